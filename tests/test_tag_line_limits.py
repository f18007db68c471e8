"""`siaga tag` on over-long input: a line longer than `vocabulary.MAX_LINE_BYTES`, or a "text"
longer than `vocabulary.MAX_TEXT` (the figure ingest refuses posts beyond), is a bad line like
any other: `{"id": null, "error": "line N: ..."}` on stdout, `siaga tag: stdin line N: ...` on
stderr, exit status 1, and its neighbours tagged as usual. A 50 MB line once took 107 s and
5.3 GB; it must now cost no more memory than an ordinary stream."""
from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
from argparse import Namespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siaga import cli
from siaga.cli import tag_cmd
from siaga.vocabulary import MAX_LINE_BYTES, MAX_TEXT
from support.trickle import Trickle

# Address space for a whole `siaga tag` process: an ordinary stream runs in under 300 MB of it;
# tagging a 50 MB line took 5.3 GB.
_ADDRESS_SPACE = 700 << 20


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def _tag(data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input=data, capture_output=True,
                          preexec_fn=_limited, timeout=600)


def _line(post_id: int, text: str) -> bytes:
    return json.dumps({"id": post_id, "text": text}).encode()


def test_a_50_mb_line_is_a_bad_line_and_its_neighbours_are_tagged_in_bounded_memory():
    long_line = b'{"id": 2, "text": "banjir di Sangsit ' + b"a" * (50 << 20) + b'"}'
    lines = [_line(1, "Banjir di Desa Sangsit, Kec. Sawan"), long_line, _line(3, "macet parah di Jalan Ahmad Yani Singaraja")]
    out = _tag(b"\n".join(lines) + b"\n")
    assert out.returncode == 1, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, None, 3]
    assert rows[0]["hazards"] == ["flood"] and rows[0]["in_region"] is True
    assert rows[2]["hazards"] == ["traffic_jam"]
    assert rows[1] == {"id": None, "error": f"line 2: longer than {MAX_LINE_BYTES} bytes, the limit of a line: not read"}
    assert out.stderr.decode().splitlines() == [f"siaga tag: stdin line 2: longer than {MAX_LINE_BYTES} bytes, the limit of a line: not read"]


def test_a_long_last_line_without_newline_is_a_bad_line():
    out = _tag(_line(1, "gempa") + b"\n" + b'{"id": 2, "text": "' + b"x" * (3 * MAX_LINE_BYTES))
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, None]
    assert rows[1]["error"].startswith("line 2: ") and str(MAX_LINE_BYTES) in rows[1]["error"]


def test_an_over_long_text_is_a_bad_line_naming_the_field_and_the_limit():
    """Plain and \\u-escaped texts (the second reader) alike; a text of exactly MAX_TEXT is tagged."""
    lines = [
        _line(1, "banjir " + "a" * (MAX_TEXT - 7)),
        _line(2, "banjir " + "a" * (MAX_TEXT - 6)),
        _line(3, "longsor é " + "é" * (MAX_TEXT - 9)),  # json.dumps writes é as \u00e9
        _line(4, "pohon tumbang di Seririt"),
    ]
    out = _tag(b"\n".join(lines) + b"\n")
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, None, None, 4]
    assert rows[0]["hazards"] == ["flood"] and "fallen_tree" in rows[3]["hazards"]
    for n in (2, 3):
        message = f"line {n}: field 'text': {MAX_TEXT + 1} characters, more than {MAX_TEXT}"
        assert rows[n - 1] == {"id": None, "error": message}
        assert f"siaga tag: stdin {message}" in out.stderr.decode()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0, 5, MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, 2 * MAX_LINE_BYTES + 7]),
                min_size=1, max_size=5),
       st.sampled_from([1000, 4096, 65_536, 1 << 20]), st.booleans())
def test_lines_over_the_limit_are_refused_wherever_the_pipe_cuts_them(lengths, step, final_newline):
    """A line of at most MAX_LINE_BYTES (its "\\n" aside) is read whole; a longer one is
    replaced, whatever size of reads brought it."""
    lines = [b"y" * n for n in lengths]
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    stdin = Namespace(buffer=io.BufferedReader(Trickle(data, step)))
    got = [line for batch in cli._stdin_batches(stdin) for line in batch]  # type: ignore[arg-type]
    expected: list[object] = [line + b"\n" for line in lines]
    if not final_newline:
        expected[-1] = lines[-1]
        if not lines[-1]:
            expected.pop()
    assert len(got) == len(expected)
    for line, want in zip(got, expected):
        if len(want.rstrip(b"\n")) > MAX_LINE_BYTES:  # type: ignore[union-attr]
            assert isinstance(line, tag_cmd._OverLongLine)
        else:
            assert line == want


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.booleans())
def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(step, as_text):
    """`Get-Content posts.jsonl | siaga tag` (a Windows tool writes UTF-8's byte order mark
    first): the first post was "not valid JSON: Unexpected UTF-8 BOM", however the pipe cut it.
    A mark on a later line is still that line's problem."""
    data = b"\xef\xbb\xbf" + _line(1, "banjir") + b"\n\xef\xbb\xbf" + _line(2, "banjir") + b"\n"
    if as_text:
        stdin = io.StringIO(data.decode("utf-8"))
    else:
        stdin = Namespace(buffer=io.BufferedReader(Trickle(data, step)))
    out = io.StringIO()
    status = cli._cmd_tag(Namespace(explain=False, config=None), stdin=stdin, stdout=out)  # type: ignore[arg-type]
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert status == 1 and first["id"] == 1 and first["hazards"] == ["flood"]
    assert second["id"] is None and "line 2" in second["error"] and "BOM" in second["error"]
