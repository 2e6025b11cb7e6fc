"""Manipulation's motion: where the blocks and the pad go, the gripper's scripts for each
variant, and what happened, read back from the simulation (manipulation.py draws, runs and
labels an episode with these)."""

from __future__ import annotations

import numpy as np

from cosmos_ros.sim.gripper import CLOSED, FINGER_REACH, OPEN, Phase
from cosmos_ros.sim.sample import Rejected


def layout(cfg, rng, count: int, pad_half: float, collision: bool):
    """Block positions and the pad centre, spaced apart; for a collision run, block 1 sits on
    the straight path from block 0 to the pad."""
    for _ in range(200):
        pad = rng.uniform((cfg.pad_x.low, cfg.pad_y.low), (cfg.pad_x.high, cfg.pad_y.high))
        blocks = [
            rng.uniform((cfg.block_x.low, cfg.block_y.low), (cfg.block_x.high, cfg.block_y.high)) for _ in range(count)
        ]
        if collision:
            t = cfg.collision_at.sample(rng)
            jitter = cfg.collision_jitter
            blocks[1] = blocks[0] + t * (pad - blocks[0]) + rng.uniform(-jitter, jitter, 2)
            if np.linalg.norm(pad - blocks[0]) < 0.38:
                continue
        min_gap, pad_gap = cfg.block_gap, pad_half + cfg.pad_gap
        apart = all(np.linalg.norm(a - b) >= min_gap for i, a in enumerate(blocks) for b in blocks[i + 1 :])
        if apart and all(np.linalg.norm(b - pad) >= pad_gap for b in blocks):
            return blocks, pad
    raise Rejected("no layout with the blocks and the pad apart")


def pick_script(cfg, rng, block_xy, pad_xy, half, name, zone, mode, durations) -> list[Phase]:
    grasp_xy = np.array(block_xy, float)
    if mode == "missed_grasp":
        angle = rng.uniform(0, 2 * np.pi)
        grasp_xy = grasp_xy + (half * 2 + cfg.grasp_miss.sample(rng)) * np.array([np.cos(angle), np.sin(angle)])
    grasp_z = FINGER_REACH + 0.008
    carry_z = grasp_z + 0.03 if mode == "collision" else cfg.carry_height.sample(rng)
    above = (*grasp_xy, cfg.carry_height.sample(rng))
    place_z = grasp_z + 0.004
    phases = [
        Phase(f"move above the {name}", durations[0], above, OPEN),
        Phase(f"lower the gripper to the {name}", durations[1], (*grasp_xy, grasp_z), OPEN),
        Phase(f"grasp the {name}", durations[2], (*grasp_xy, grasp_z), CLOSED),
        Phase(f"lift the {name}", durations[3], (*grasp_xy, carry_z), CLOSED),
    ]
    carry = Phase(f"carry the {name} to the {zone}", durations[4], (*pad_xy, carry_z), CLOSED)
    if mode == "drop":  # the hand snaps open part-way through the carry; same subtask
        f = cfg.drop_at.sample(rng)
        start, end = np.asarray(phases[-1].target), np.asarray(carry.target)
        opened = 0.15 / durations[4]
        phases += [
            Phase(carry.subtask, durations[4] * f, tuple(start + f * (end - start)), CLOSED),
            Phase(carry.subtask, 0.15, tuple(start + (f + opened) * (end - start)), OPEN),
            Phase(carry.subtask, durations[4] * (1 - f - opened), carry.target, OPEN),
        ]
    else:
        phases.append(carry)
    grip = phases[-1].grip
    phases += [
        Phase(f"lower the {name} onto the {zone}", durations[5], (*pad_xy, place_z), grip),
        Phase(f"release the {name}", durations[6], (*pad_xy, place_z), OPEN),
        Phase("move the gripper back up", durations[7], (*pad_xy, cfg.carry_height.high), OPEN),
    ]
    return phases


def push_script(cfg, rng, block_xy, pad_xy, half, name, zone, mode, durations) -> list[Phase]:
    direction = (pad_xy - block_xy) / np.linalg.norm(pad_xy - block_xy)
    side = np.array([-direction[1], direction[0]])
    lateral = (
        side * (half + cfg.push_miss.sample(rng)) * (1 if rng.random() < 0.5 else -1)
        if mode == "missed_push"
        else 0
    )
    contact = half + 0.03  # palm centre behind the block's back face
    start = block_xy - direction * (contact + 0.06) + lateral
    end = pad_xy - direction * contact + lateral
    low = FINGER_REACH + 0.01
    return [
        Phase(f"move behind the {name}", durations[0], (*start, 0.3), CLOSED),
        Phase("lower the gripper to the table", durations[1], (*start, low), CLOSED),
        Phase(f"push the {name} onto the {zone}", durations[2], (*end, low), CLOSED),
        Phase("lift the gripper", durations[3], (*end, 0.3), CLOSED),
    ]


def read_outcome(trajectory, count, target, handled, half, pad_xy, pad_half, skill) -> tuple[str, dict]:
    """What happened, from the simulation alone."""
    positions = np.stack([trajectory.position(f"block_{i}") for i in range(count)], 1)  # (T, N, 3)
    final = positions[-1]
    on_pad = np.all(np.abs(final[:, :2] - pad_xy) < pad_half, axis=1) & (final[:, 2] < half + 0.01)  # (N,)
    moved = np.linalg.norm(positions[:, :, :2] - positions[0, :, :2], axis=2).max(axis=0)  # (N,)
    lifted = positions[:, :, 2].max(axis=0) > half + 0.04  # (N,)
    bystanders = [i for i in range(count) if i not in (target, handled)]
    facts = {
        "blocks_on_pad": [bool(v) for v in on_pad],
        "blocks_lifted": [bool(v) for v in lifted],
        "blocks_moved_m": [round(float(v), 4) for v in moved],
    }
    if handled != target:
        outcome = (
            "wrong_object" if on_pad[handled] and not on_pad[target] and moved[target] < 0.02 else "unclear"
        )
    elif any(moved[i] > 0.03 for i in bystanders):
        outcome = "collision"
    elif on_pad[target]:
        outcome = "success" if skill == "push" or lifted[target] else "unclear"
    elif skill == "push":
        outcome = "missed_push" if moved[target] < 0.02 else "unclear"
    else:
        outcome = "missed_grasp" if not lifted[target] else "drop"
    return outcome, facts


def failure_frame(mode, trajectory, count, target, handled, half, pad_xy) -> int:
    """The first frame that shows the failure: from then on the reasoner could see it."""
    gripper = trajectory.position("gripper")  # (T, 3) palm
    blocks = np.stack([trajectory.position(f"block_{i}") for i in range(count)], 1)  # (T, N, 3)
    if mode == "missed_grasp":  # the hand rises from its lowest point and the block stays down
        lowest = int(np.argmin(gripper[:, 2]))
        shown = (np.arange(len(gripper)) > lowest) & (gripper[:, 2] > gripper[lowest, 2] + 0.04)
    elif mode == "drop":  # the block, once lifted, has fallen visibly
        z = blocks[:, target, 2]
        peak = np.maximum.accumulate(z)
        shown = (peak > half + 0.04) & (z < peak - 0.03)
    elif mode == "collision":  # another block has been knocked
        moved = np.linalg.norm(blocks[:, :, :2] - blocks[0, :, :2], axis=2)  # (T, N)
        bystanders = [i for i in range(count) if i not in (target, handled)]
        shown = (moved[:, bystanders] > 0.01).any(axis=1)
    elif mode == "wrong_object":  # the other block is off the table
        shown = blocks[:, handled, 2] > half + 0.02
    elif mode == "missed_push":  # the palm, down at the table, has swept past the block's front face
        start = blocks[0, target, :2]
        direction = (pad_xy - start) / np.linalg.norm(pad_xy - start)
        shown = (gripper[:, 2] < FINGER_REACH + 0.05) & ((gripper[:, :2] - start) @ direction > half + 0.03)
    else:
        raise ValueError(f"no failure event for outcome {mode!r}")
    frames = np.flatnonzero(shown)
    if frames.size == 0:
        raise Rejected(f"the {mode} never shows in the clip")
    return int(frames[0])
