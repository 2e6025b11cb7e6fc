"""The ground floor: frames, image codec, prompts, answer parsing and rewards.

Pure Python + numpy (OpenCV only when an image needs converting). Imports
neither rclpy nor torch, so every other floor and every test can use it.
"""

from inspect import ismodule as _ismodule

from cosmos_ros.core.answers import AnswerStatus, ParsedAnswer, accuracy_reward, format_reward, parse_answer
from cosmos_ros.core.codec import (
    DECODE_CAUSES,
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    array_to_image_fields,
    compressed_imgmsg_to_cv2,
    compressed_to_rgb8,
    cv2_to_compressed_imgmsg,
    cv2_to_imgmsg,
    cvt_color,
    encoding_info,
    image_to_array,
    image_to_rgb8,
    imgmsg_to_cv2,
    rgb8_to_compressed_fields,
    stamp_seconds,
    time_seconds,
)
from cosmos_ros.core.frames import CameraStats, EmptyClipError, FrameBuffer
from cosmos_ros.core.prompts import (
    FAILED_CHOICE,
    FAILURE_OPTIONS,
    REASONING_FREE,
    REASONING_MCQ,
    failure_prompt,
    free_prompt,
    mcq_prompt,
    next_subtask_prompt,
)
from cosmos_ros.core.types import Clip, OutcomeStatus, Prompt, Reasoning, TaskKind

# Everything imported above (the submodules aside) is the floor's public API.
__all__ = sorted(name for name, value in list(globals().items()) if not name.startswith("_") and not _ismodule(value))
