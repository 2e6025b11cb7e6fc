"""The reasoner's stamp rules: StampTicks (on sim time the periodic answers follow the camera's
stamps) and IngestGate (which frames are taken at all, decided from the stamp)."""

from __future__ import annotations

from builtin_interfaces.msg import Time

from cosmos_ros.nodes.messages import IngestGate, StampBase, StampTicks

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


def test_the_ingest_gate_takes_one_frame_per_gap_per_camera_and_counts_the_rest():
    gate = IngestGate()
    gap = 56_250_000  # 0.9 / 16 Hz
    taken = [i for i in range(30) if gate.take("front", stamp(T0 + i * 20_000_000), gap)]  # 50 Hz
    assert taken == list(range(0, 30, 3))  # every 60 ms: the first frame at least a gap later
    assert gate.skipped == {"front": 20}
    assert gate.take("wrist", stamp(T0 + 10_000_000), gap)  # cameras are gated apart


def test_the_ingest_gate_lets_duplicates_reordering_and_jumps_through_to_the_buffer():
    gate = IngestGate()
    gap = 100_000_000
    assert gate.take("front", stamp(T0), gap)
    assert gate.take("front", stamp(T0), gap)  # a duplicate: the buffer counts it
    assert gate.take("front", stamp(T0 - 5_000_000), gap)  # older: the buffer counts reordering
    assert gate.take("front", stamp(T0 - 3_600_000_000_000), gap)  # a jump back: a new timeline
    assert not gate.take("front", stamp(T0 - 3_600_000_000_000 + 50_000_000), gap)  # gated on it
    assert gate.skipped == {"front": 1}
