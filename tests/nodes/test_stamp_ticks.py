"""The reasoner's stamp rules: StampTicks (on sim time the periodic answers follow the camera's
stamps) and StampGate (ingest_mode stamp: which frames are taken at all, decided from the stamp)."""

from __future__ import annotations

from builtin_interfaces.msg import Time

from cosmos_ros.nodes.ingest import StampGate
from cosmos_ros.nodes.messages import StampBase, StampTicks

HALF_S = 500_000_000


def run(stamps_ns, period_ns=HALF_S, restarts=()):
    """The clip ends (header stamps, ns) StampTicks asks for while the frames arrive."""
    base, ticks, ends = StampBase(), StampTicks(), []
    for i, ns in enumerate(stamps_ns):
        stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        end = ticks.offer(stamp, base.to_seconds(stamp), period_ns, restart=i in restarts)
        if end is not None:
            time = base.to_time(end)
            ends.append(time.sec * 1_000_000_000 + time.nanosec)
    return ends


T0 = 1_700_000_000_000_000_000


def test_one_answer_per_period_entered_on_the_last_frame_before_it():
    frames = [T0 + i * 100_000_000 for i in range(23)]  # 10 Hz for 2.2 s
    assert run(frames) == [T0 + 400_000_000, T0 + 900_000_000, T0 + 1_400_000_000, T0 + 1_900_000_000]


def test_periods_count_from_stamp_zero_not_from_the_first_frame():
    frames = [T0 + 300_000_000 + i * 100_000_000 for i in range(6)]  # starts mid-period
    assert run(frames) == [T0 + 400_000_000]


def test_a_gap_over_several_periods_gives_one_answer():
    assert run([T0, T0 + 100_000_000, T0 + 2_100_000_000]) == [T0 + 100_000_000]


def test_a_bag_played_again_starts_counting_over():
    once = [T0 + i * 100_000_000 for i in range(12)]
    assert run(once + once) == run(once) * 2


def test_a_clock_jump_starts_counting_over_from_that_frame():
    frames = [T0 + i * 100_000_000 for i in range(12)]
    assert run(frames) == [T0 + 400_000_000, T0 + 900_000_000]
    assert run(frames, restarts={5}) == [T0 + 900_000_000]  # the frame that entered a period restarted


def stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def run_gate(gate: StampGate, camera: str, stamps_ns, gap: int, broken=()) -> list[int]:
    """Indices of the frames taken, as CameraIngest uses the gate (broken ones fail to decode)."""
    taken = []
    for i, ns in enumerate(stamps_ns):
        if gate.due(camera, stamp(ns), gap) and i not in broken:
            gate.taken(camera, stamp(ns))
            taken.append(i)
    return taken


def test_the_stamp_gate_takes_one_frame_per_gap_per_camera():
    gate = StampGate()
    gap = 56_250_000  # 0.9 / 16 Hz
    fifty_hz = [T0 + i * 20_000_000 for i in range(30)]
    assert run_gate(gate, "front", fifty_hz, gap) == list(range(0, 30, 3))  # every 60 ms
    assert gate.due("wrist", stamp(T0 + 10_000_000), gap)  # cameras are gated apart


def test_a_frame_that_fails_to_decode_does_not_use_up_its_slot():
    fifty_hz = [T0 + i * 20_000_000 for i in range(12)]
    assert run_gate(StampGate(), "front", fifty_hz, 56_250_000, broken={3}) == [0, 4, 7, 10]


def test_the_stamp_gate_lets_duplicates_reordering_and_jumps_through_to_the_buffer():
    gate = StampGate()
    gap = 100_000_000
    frames = [T0, T0, T0 - 5_000_000, T0 - 3_600_000_000_000, T0 - 3_600_000_000_000 + 50_000_000]
    # a duplicate and an older stamp are due (the buffer counts them); a jump back starts a new
    # timeline that is gated on in its turn
    assert run_gate(gate, "front", frames, gap) == [0, 1, 2, 3]
