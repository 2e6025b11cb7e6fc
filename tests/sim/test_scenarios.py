"""Scenarios: reproducible, and their labels agree with the simulation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cosmos_ros.core.prompts import next_subtask_prompt
from cosmos_ros.sim.config import Range
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Rejected
from cosmos_ros.sim.scenarios import arrow, generate, puzzle
from cosmos_ros.sim.scenarios.common import PARKING


@pytest.mark.parametrize("task", ["object_permanence", "arrow_of_time", "spatial_puzzle", "manipulation"])
def test_same_seed_gives_the_same_clip_and_labels(configs, task):
    first, second = generate(configs[task], 3), generate(configs[task], 3)
    assert np.array_equal(first.frames, second.frames)
    assert first.labels == second.labels
    assert [q.answer for q in first.questions] == [q.answer for q in second.questions]


def test_an_occluded_ball_is_invisible_in_segmentation_but_its_position_persists(configs):
    sample = generate(configs["object_permanence"], 0, variant="occluder_stay")
    frames = sample.labels["frames"]
    hidden = [k for k, px in enumerate(frames["ball_visible_px"]) if px == 0]
    assert hidden and hidden[-1] == len(sample.frames) - 1  # stopped behind the wall: hidden at the end
    assert all(frames["ball_exists"][k] for k in hidden)
    assert all(frames["ball_state"][k] == "occluded" for k in hidden)
    positions = np.array([frames["ball_position"][k] for k in hidden])
    assert np.isfinite(positions).all()
    wall = sample.trajectory.position("wall")[-1]
    assert abs(positions[-1, 0] - wall[0]) < 0.42  # behind the wall, in x
    assert positions[-1, 1] > wall[1]  # and farther from the camera than the wall
    assert sample.questions[1].answer_text == "It is hidden behind the wall"


def test_a_vanishing_ball_disappears_only_while_hidden(configs):
    sample = generate(configs["object_permanence"], 1, variant="occluder_vanish")
    frames, k = sample.labels["frames"], sample.labels["vanish_frame"]
    assert frames["ball_exists"][k - 1] and not frames["ball_exists"][k]
    assert frames["ball_visible_px"][k - 1] == 0 and frames["ball_visible_px"][k] == 0
    assert not any(frames["ball_visible_px"][k:])
    assert np.allclose(np.array(frames["ball_position"][-1])[:2], PARKING, atol=1e-3)
    assert sample.questions[0].answer_text.startswith("No")


def test_a_carried_ball_ends_under_the_cup_that_covered_it(configs):
    sample = generate(configs["object_permanence"], 2, variant="container_carried")
    frames = sample.labels["frames"]
    assert "carried" in frames["ball_state"] and "contained" in frames["ball_state"]
    start, end = np.array(frames["ball_position"][0]), np.array(frames["ball_position"][-1])
    assert np.linalg.norm(end[:2] - start[:2]) > 0.4  # pushed along by the cup's walls
    cups = np.array(frames["cup_positions"][-1])  # (2, 2)
    assert np.min(np.linalg.norm(cups - end[:2], axis=1)) < 0.21


def test_a_reversed_clip_is_the_forward_clip_played_backwards(configs):
    cfg = configs["arrow_of_time"]
    forward = arrow.generate(cfg, 11, "bouncing", reverse=False)
    backward = arrow.generate(cfg, 11, "bouncing", reverse=True)
    assert np.array_equal(backward.frames, forward.frames[::-1])
    assert backward.labels["frames"]["at_rest"] == forward.labels["frames"]["at_rest"][::-1]
    assert forward.questions[0].answer_text == "Forward" and backward.questions[0].answer_text == "In reverse"


def test_rest_patterns_are_chosen_only_with_their_mirror_image():
    rng = np.random.default_rng(0)
    at_rest = np.array([True] * 4 + [False] * 20 + [True] * 20)  # starts and ends at rest
    for _ in range(50):
        start, pattern = arrow._window(at_rest, 12, 0.25, rng)
        assert pattern in {(True, True), (False, False), (True, False), (False, True)}
        assert (bool(at_rest[start]), bool(at_rest[start + 11])) == pattern
    with pytest.raises(Rejected):  # only moving -> rest windows: no mirror, no clip
        arrow._window(np.array([False] * 8 + [True] * 30), 12, 0.25, rng)


def test_puzzle_answers_restore_the_rendered_frames_and_distractors_do_not(configs):
    for index in range(3):
        sample = generate(configs["spatial_puzzle"], index)
        question = sample.questions[0]
        for i, option in enumerate(question.options):
            restored = puzzle.restore(sample.frames, puzzle.parse_option(option))
            assert np.array_equal(restored, sample.original_frames) == (i == question.answer)
        assert len(set(question.options)) == 4


def test_puzzle_objects_start_clear_of_each_other(configs):
    """Objects that start inside each other are flung apart when another engine replays the stage."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        try:
            bodies = puzzle.draw(configs["spatial_puzzle"], rng)
        except Rejected:
            continue
        footprints = []
        for body in bodies:
            geom = body.geoms[0]
            radius = {"sphere": geom.size[0], "box": geom.size[0] * np.sqrt(2), "cylinder": geom.size[0]}[geom.shape]
            footprints.append((np.asarray(body.pos[:2]), radius))
        for i, (a, ra) in enumerate(footprints):
            for b, rb in footprints[i + 1 :]:
                assert np.linalg.norm(a - b) >= ra + rb - 1e-9


def test_puzzle_corner_questions_name_the_patch_that_held_the_corner(configs):
    cfg = dataclasses.replace(configs["spatial_puzzle"], question="corner", option_order="sorted")
    asked = set()
    for index in range(4):
        sample = generate(cfg, index)
        question = sample.questions[0]
        corner = sample.labels["corner"]
        asked.add(corner)
        assert corner in question.question and question.options == puzzle.PATCH_OPTIONS
        # sorted options: letter A is patch 1, so the letter is a property of the video alone
        patch = puzzle.patches(sample.frames)[question.answer]
        original = puzzle.restore(sample.frames, sample.labels["correct_option"])
        assert np.array_equal(patch, puzzle.patches(original)[puzzle.CORNERS.index(corner)])
        assert sample.labels["best_rival_seam_cost"] >= cfg.seam_margin * sample.labels["seam_cost"]
    assert len(asked) > 1  # drawn among all four corners by default
    only = dataclasses.replace(cfg, corners=("top-left",))
    assert generate(only, 0).labels["corner"] == "top-left"
    with pytest.raises(ValueError, match="corners"):
        dataclasses.replace(cfg, corners=("middle",))
    with pytest.raises(ValueError, match="question"):
        dataclasses.replace(cfg, question="jigsaw")


def test_manipulation_failure_labels_follow_the_physics(configs):
    cfg = configs["manipulation"]
    missed = generate(cfg, 0, variant="pick_missed_grasp")
    assert missed.labels["outcome"] == "missed_grasp" and not missed.labels["blocks_lifted"][0]
    assert missed.questions[0].answer_text == "Yes, the robot failed"
    success = generate(cfg, 0, variant="pick_success")
    assert success.labels["blocks_on_pad"][0] and success.labels["blocks_lifted"][0]
    assert success.questions[0].answer_text == "No, the robot did not fail"


def test_next_subtask_questions_show_the_clip_up_to_a_subtask_boundary(configs):
    sample = generate(configs["manipulation"], 4, variant="pick_success")
    question = next(q for q in sample.questions if q.kind == "next_subtask")
    start, end = sample.videos[question.video]
    per_frame = sample.labels["frames"]["subtask_index"]
    finished = per_frame[end - 1]
    assert question.answer_text == sample.labels["subtasks"][finished + 1]
    assert end == len(per_frame) or per_frame[end] == finished + 1
    assert question.prompt().kind.value == "next_subtask"


def _stream(configs, **fields):
    return dataclasses.replace(configs["manipulation"], stream_windows=8, window_frames=12, **fields)


@pytest.mark.parametrize("variant", ["pick_success", "pick_drop", "push_missed_push"])
def test_stream_windows_ask_the_plan_step_after_the_last_frame(configs, variant):
    sample = generate(_stream(configs), 2, variant=variant)
    plan = sample.labels["subtasks"]
    per_frame = sample.labels["frames"]["subtask_index"]
    asked = [q for q in sample.questions if q.kind == "next_subtask"]
    assert asked
    for question in asked:
        start, end = sample.videos[question.video]
        assert 0 < end - start <= 12 and (start == 0 or end - start == 12)
        assert question.options == tuple(plan)  # the planner's plan, in order
        assert question.answer == per_frame[end - 1] + 1
        assert question.prompt().text == next_subtask_prompt(question.task, plan).text


@pytest.mark.parametrize("variant", ["pick_missed_grasp", "pick_drop", "pick_collision", "pick_wrong_object",
                                     "push_missed_push"])  # fmt: skip
def test_stream_failure_answers_change_when_the_failure_shows(configs, variant):
    sample = generate(_stream(configs, failure_margin_frames=2), 1, variant=variant)
    shown = sample.labels["failure_frame"]
    assert 0 < shown < len(sample.frames)
    for question in (q for q in sample.questions if q.kind == "failure"):
        last = sample.videos[question.video][1] - 1
        assert not shown <= last < shown + 2  # the frames right after the event are not asked
        assert question.answer_text == ("Yes, the robot failed" if last >= shown else "No, the robot did not fail")


def test_late_windows_follow_the_failure_or_a_matched_moment(configs):
    shifted = generate(_stream(configs, late_window_share=1.0), 3, variant="pick_drop")
    shown = shifted.labels["failure_frame"]
    assert all(end - 1 >= shown + 2 for _, end in shifted.videos.values())
    failure = [q for q in shifted.questions if q.kind == "failure"]
    assert failure and all(q.answer_text == "Yes, the robot failed" for q in failure)
    # a succeeded episode's late windows end where failures show: lateness is no clue to the verdict
    frames = configs["manipulation"].render.num_frames
    ends = [end for seed in range(4) for _, end in
            generate(_stream(configs, late_window_share=1.0, late_from=Range(0.5, 0.5)), seed,
                     variant="pick_success").videos.values()]  # fmt: skip
    assert ends and min(ends) - 1 >= frames // 2 + 2
    uniform = [end for seed in range(4) for _, end in
               generate(_stream(configs), seed, variant="pick_success").videos.values()]  # fmt: skip
    assert min(uniform) < frames // 2  # without it windows end anywhere


def test_the_failure_frame_is_when_the_physics_shows_it(configs):
    drop = generate(configs["manipulation"], 0, variant="pick_drop")
    z = np.asarray(drop.labels["frames"]["block_positions"])[:, 0, 2]
    frame = drop.labels["failure_frame"]
    assert z[:frame].max() > z[frame] + 0.02  # lifted, then visibly lower
    collision = generate(configs["manipulation"], 0, variant="pick_collision")
    bystander = np.asarray(collision.labels["frames"]["block_positions"])[:, 1, :2]
    moved = np.linalg.norm(bystander - bystander[0], axis=1)
    frame = collision.labels["failure_frame"]
    assert moved[frame] > 0.01 and moved[frame - 1] <= 0.01
    assert generate(configs["manipulation"], 0, variant="pick_success").labels["failure_frame"] is None


def test_manipulation_config_rejects_bad_phase_weights_and_windows(configs):
    cfg = configs["manipulation"]
    with pytest.raises(ValueError, match="pick_phase_weights"):
        dataclasses.replace(cfg, pick_phase_weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="window_frames"):
        dataclasses.replace(cfg, window_frames=1)


def test_segmentation_render_matches_the_rgb_pass(configs):
    sample = generate(configs["object_permanence"], 5, variant="occluder_pass")
    seg_only = render(sample.sim, sample.trajectory, 96, 96, rgb=False).visible_px["ball"]
    assert seg_only.tolist() == sample.labels["frames"]["ball_visible_px"]
