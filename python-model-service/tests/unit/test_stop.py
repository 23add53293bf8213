from app.serving.stop import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    out = "".join(matcher.feed(p) for p in pieces)
    return out + matcher.flush()


def test_stop_inside_one_piece_is_cut_before_it() -> None:
    m = StopMatcher(["人工智能"])
    assert feed_all(m, ["你好", "!", "我是人工智能助手"]) == "你好!我是"
    assert m.stopped


def test_stop_spanning_pieces_never_leaks() -> None:
    m = StopMatcher(["!我"])
    emitted = [m.feed("你好"), m.feed("!"), m.feed("我是")]
    assert emitted == ["你好", "", ""]
    assert m.stopped


def test_a_held_prefix_that_does_not_complete_is_released() -> None:
    m = StopMatcher(["END"])
    assert m.feed("abcE") == "abc"
    assert m.feed("Nx") == "ENx"
    assert m.flush() == ""
    m2 = StopMatcher(["END"])
    assert m2.feed("abEN") == "ab"
    assert m2.flush() == "EN"


def test_earliest_of_several_stops_wins() -> None:
    m = StopMatcher(["world", "lo"])
    assert feed_all(m, ["hello world"]) == "hel"


def test_no_stops_passes_through() -> None:
    m = StopMatcher([])
    assert m.feed("x") == "x"
    assert m.flush() == ""


def test_nothing_after_a_stop() -> None:
    m = StopMatcher(["a"])
    assert m.feed("xay") == "x"
    assert m.feed("more") == ""
    assert m.flush() == ""
