"""Tokenizers: an offline byte-level BPE for the tiny presets, and the loader for real checkpoints.

The tiny tokenizer is trained in code from a small built-in corpus (robotics and physics words,
the Cosmos prompt conventions, the reasoning format tags), so tests and the demo need no
download. It carries the Qwen2.5-VL special tokens in Qwen's order at ids 0..13, so a tiny id is
the Qwen id minus 151643, and the ChatML chat template Qwen2-VL ships. The hybrid variant adds
InternVL's frame tokens after the trained vocabulary (ids 4096..4099), with the named attributes
InternVL tokenizers have (`start_image_token`, `context_image_token`, ...), and InternVL's chat
template (`<video>` placeholder before the text); the dense ids are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

# Qwen2.5-VL's added tokens, in vocabulary order (151643 ... 151656).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# InternVL's frame tokens, by the attribute names transformers' InternVL tokenizers carry.
INTERNVL_SPECIAL_TOKENS: dict[str, str] = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}

TINY_VOCAB_SIZE = 4096

# Qwen2-VL's chat template: media parts become one placeholder each, which the processor
# expands to the number of visual tokens.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# InternVL-hf's chat template with our system-turn default: media parts become `<video>\n`, which
# the hybrid processor expands into one `FrameN: <img><IMG_CONTEXT>...</img>` line per frame.
HYBRID_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'video' %}<video>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_WORDS = """
robot robots arm gripper grasp grasps grasped release released place placed pick picked lift
lifted push pushed pull pulled open opened close closed move moved moving reach reached rotate
rotated slide slid drop dropped fall falls fell falling roll rolls rolled rolling bounce bounced
stack stacked insert inserted pour poured wipe wiped fold folded hand hands finger fingers
object objects ball cube block blocks box cup mug bowl plate bottle lid drawer door handle
table shelf tray basket wall floor ground ramp cloth towel sponge peg hole tool screw spoon
red green blue yellow orange purple black white gray small large big tall short left right up
down top bottom front behind back above below inside outside near far next first then after
before while during until end start begin middle side center corner edge visible hidden
occluded appears disappears reappears remains stays still rest static moving forward backward
physics physical gravity mass velocity speed acceleration force friction momentum energy
collision contact motion trajectory position orientation height distance time frame frames
video clip camera view scene time arrow reversed reverse forward played permanence
task subtask step steps plan goal success succeeded failure failed fails complete completed
incomplete attempt attempts again retry next current previous question answer answers option
options choose choice correct incorrect yes no none unknown uncertain true false because
therefore so since however the a an is are was were be been being it its this that these
those there here what which who where when why how does did do done will would should could
can cannot not of to in on at by for with from into onto over under between through and or
kitchen sink counter stove oven fridge microwave knife fork pan pot kettle lid jar can carrot apple
banana orange lemon bread egg milk water juice coffee tea sugar salt pepper cabinet chair couch bed
pillow blanket laptop phone keyboard mouse pen pencil paper book notebook marker scissors tape
hammer wrench screwdriver drill nail bolt nut gear wheel axle motor sensor joint link base wrist
elbow shoulder torso head leg foot mobile manipulator humanoid quadruped vehicle car truck
pedestrian road lane traffic light sign crosswalk sidewalk obstacle path route map goal target
metal wood plastic glass rubber paper fabric soft hard rigid deformable liquid solid heavy light
empty full half quarter one two three four five six seven eight nine ten zero many few several
second seconds minute minutes meter meters centimeter degree degrees angle fast slow quickly
slowly suddenly smoothly carefully gently firmly tightly loosely completely partially almost
simulation simulated render rendered sensor depth segmentation pose poses trajectory velocity
collide collides collided contacts supports supported balance balanced unstable stable tipped
tilted upright sideways upside flipped spin spins spun swing swung shake shook throw threw
catch caught hit hits struck break broke broken crack spill spilled leak melt freeze heat cool
reasoning reason reasons think thought thinking observe observed observation notice noticed
shows showed show see saw seen look looks looked appear seems likely unlikely probably possible
impossible must might may because therefore first second third finally also only just even
still again already yet never always sometimes often each every all some any both either
neither other another same different similar
"""

_TEMPLATES = """
<think>
your reasoning
</think>

<answer>
your answer
</answer>
Answer the question with provided options in the following format: <think>
your reasoning
</think>

<answer>
your answer
</answer>.
Answer the question in the following format: <think>
your reasoning
</think>

<answer>
your answer
</answer>.
What is the next subtask the robot should do?
Given the task, what should the robot do next?
Did the robot succeed at the subtask? Answer yes or no.
Did the robot fail? Explain what went wrong.
Is the video playing forward or in reverse?
Where is the ball after it goes behind the wall?
Which object did the gripper pick up first?
The robot is performing the task: pick up the red cube and place it in the bowl.
Options: A. pick up the cube B. place the cube in the bowl C. open the gripper D. none
(A) (B) (C) (D) (E) A. B. C. D. E.
You are a helpful assistant.
0 1 2 3 4 5 6 7 8 9 10 20 30 0.5 1.0 seconds frames per second
"""


def _training_corpus() -> list[str]:
    words = _WORDS.split()
    lines = _TEMPLATES.strip().split("\n")
    variants = [f"{w} {w.capitalize()} {w}s {w}ing {w}ed. {w}," for w in words]
    sentences = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    # Repetition weights the templates and common words so their merges are learned first.
    return lines * 20 + sentences * 5 + variants + ["\n\n".join(lines)] * 10


def build_tiny_tokenizer(
    vocab_size: int = TINY_VOCAB_SIZE, *, family: str = "dense"
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained in code, with the Qwen2.5-VL special tokens at ids 0..13.

    family "hybrid" appends InternVL's frame tokens after the trained vocabulary and uses
    InternVL's chat template. Deterministic: the same vocabulary and merges every call.
    """
    hybrid = _layout(family) == "internvl"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=HYBRID_CHAT_TEMPLATE if hybrid else CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        **({"extra_special_tokens": dict(INTERNVL_SPECIAL_TOKENS)} if hybrid else {}),
    )


def _layout(family: str) -> str:
    """The tokenizer layout of a family: "qwen" (dense, qwen3_vl: Qwen's specials and template) or
    "internvl" (hybrid: InternVL's frame tokens and template)."""
    from cosmos_ros.model.families import family_of

    return family_of(family).tiny_tokenizer


def load_tokenizer(path: str | Path, family: str = "dense") -> PreTrainedTokenizerFast:
    """The tokenizer saved in a checkpoint directory (local files only, never a download). Its chat
    template is the checkpoint's own — in tokenizer_config.json or chat_template.jinja (which
    transformers reads), or in chat_template.json (the processor's file, where Qwen2.5-VL
    releases keep it) — and only a checkpoint with none gets the family's (ChatML with Qwen's or
    InternVL's media layout)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer directory {path} does not exist")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no tokenizer (expected tokenizer.json or tokenizer_config.json)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = processor_chat_template(path) or (
            HYBRID_CHAT_TEMPLATE if _layout(family) == "internvl" else CHAT_TEMPLATE
        )
    return tokenizer


def processor_chat_template(path: Path) -> str | None:
    """The template in a checkpoint's chat_template.json ({"chat_template": "..."}), if any."""
    file = path / "chat_template.json"
    if not file.is_file():
        return None
    try:
        template = json.loads(file.read_text()).get("chat_template")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f'{file} is not a chat template file ({{"chat_template": ...}}): {exc}') from None
    return template if isinstance(template, str) and template.strip() else None
