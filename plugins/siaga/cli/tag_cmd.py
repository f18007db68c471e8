"""`siaga tag`: places and hazards per post, JSON Lines in and out (the measured contract), or
`--explain` for a person. One bad line is reported on stderr and costs that line only."""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from siaga.cli.common import CommandError, sentence
from siaga.vocabulary import MAX_LINE_BYTES, MAX_TEXT


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    summary = "tag posts read from standard input: places and hazards per post"
    tag = sub.add_parser("tag", parents=[parent], help=summary, description=(
        f"{sentence(summary)}. Reads JSON Lines objects with id, text and optional created_at, lat, lon; "
        "writes one JSON object per post, in order. A bad line is reported on stderr (and as an "
        "{\"id\": null, \"error\": ...} line) and the rest go on; the exit status is then 1."))
    tag.add_argument("--explain", action="store_true", help="print why, for a person, instead of JSON")
    tag.add_argument("--config", type=Path, help="config folder (with hazards/) or hazard lists folder (default: config/)")
    tag.set_defaults(func=_cmd_tag)


def _cmd_tag(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from siaga.collector import TAGGING_GEN0, fewer_collections, long_lived_frozen
    from siaga.hazard_config import HazardConfigError, default_hazard_dir, hazards_dir_of
    from siaga.hazards import HazardSet
    from siaga.tagging import Tagger

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if stdin is None or stdout is None:  # started with the descriptor closed (`siaga tag <&-`)
        raise CommandError(f"standard {'input' if stdin is None else 'output'} is closed: nothing to tag, or nowhere to write the answers")
    try:
        tagger = Tagger(HazardSet.load(hazards_dir_of(args.config) if args.config else default_hazard_dir()))
    except HazardConfigError as exc:
        print(f"siaga tag: the hazard lists cannot be used:\n{exc}", file=sys.stderr)
        return 2
    # The loaded matchers are a few hundred thousand long-lived objects, left out of the
    # collector's passes while the stream is tagged; what each batch of lines allocates is
    # walked less often (`collector`).
    with long_lived_frozen(), fewer_collections(TAGGING_GEN0):
        return _tag_stream(args, tagger, stdin, stdout)


def _tag_stream(args: argparse.Namespace, tagger: Any, stdin: TextIO, stdout: TextIO) -> int:
    """Tag each JSON line of `stdin` onto `stdout` (or explain it); 1 if any line failed."""
    failures = 0
    line_no = 0
    decode = _fast_decoder()
    for batch in _stdin_batches(stdin):
        # Each line read first, then the batch's posts tagged together (`Tagger.tag_many`, the
        # matchers a stage at a time), then each answer written in line order; whatever one
        # line holds or makes the tagger do still costs that line only.
        read: list[tuple[int, Any, bool]] = []  # (line number, post or what reading raised, checked)
        for line in batch:
            line_no += 1
            if line[:1] != b"{" and not line.strip():  # a line that opens an object is not blank: no copy to say so
                continue
            try:
                post = _read_plain_post(line, decode) if isinstance(line, bytes) else None
                checked = post is not None  # its id is sound: no lone surrogate can reach the output
                if post is None:
                    post = _read_post(line)
            except Exception as exc:  # noqa: BLE001
                read.append((line_no, exc, False))
                continue
            read.append((line_no, post, checked))
        posts = [(p["text"], p.get("lat"), p.get("lon")) for _, p, _ in read if type(p) is dict]
        tagged = iter(tagger.tag_many(posts))
        out: list[str] = []  # answers without their "\n": joined by it, one more after the last
        explain = args.explain
        for number, post, checked in read:
            try:
                if type(post) is not dict:
                    raise post
                result = next(tagged)
                if isinstance(result, Exception):
                    raise result
                if explain:
                    text = _explain(post, result, tagger)
                else:
                    text = result.to_json(post.get("id"))
                if not checked:
                    text.encode("utf-8")  # a lone surrogate (in an id) must fail here, not half-way through a write
            except Exception as exc:  # noqa: BLE001
                from siaga.sources.records import describe

                failures += 1
                reason = describe(exc)
                print(f"siaga tag: stdin line {number}: {reason}", file=sys.stderr)
                out.append(json.dumps({"id": None, "error": f"line {number}: {reason}"}))
                continue
            out.append(text)
        if out:
            out.append("")
            stdout.write("\n".join(out))
            stdout.flush()
    return 1 if failures else 0


# Bytes asked of stdin per read. A line within one read is never over MAX_LINE_BYTES, so only a
# line carried over from read to read is measured, once per read: ordinary lines are not.
_READ = 1 << 16
assert MAX_LINE_BYTES >= _READ


def _stdin_batches(stdin: TextIO) -> Iterator[list[str | bytes]]:
    """Lines split at "\\n" only, in batches of what has arrived: as bytes from a real stream
    (so a line that is not UTF-8 is reported as such, not a crash of the whole stream), else as
    the text given, one line a batch. Answers are written and flushed a batch at a time: a
    piped stream gets each answer as soon as its line is in, without a write per line when
    lines arrive by the thousand. A line longer than MAX_LINE_BYTES comes as an `_OverLongLine`,
    its bytes dropped as they arrive, so no line can fill the memory."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        for number, line in enumerate(stdin):
            if number == 0:
                line = line.removeprefix("\ufeff")  # a byte order mark, read as text
            yield [_OverLongLine() if len(line) > MAX_LINE_BYTES else line]
        return
    read = getattr(buffer, "read1", buffer.read)
    pending: list[bytes] = []
    held = 0  # bytes in `pending`
    over = False  # the line being read is longer than MAX_LINE_BYTES: the rest of it is dropped
    for data in _chunks(read):
        if not data:
            if over or pending:
                yield [_OverLongLine() if over else b"".join(pending)]
            return
        if b"\n" not in data:
            held += len(data)
            if held > MAX_LINE_BYTES:
                over, pending = True, []
            else:
                pending.append(data)
            continue
        lines = data.split(b"\n")
        if pending:
            lines[0] = b"".join(pending) + lines[0]
            over = over or len(lines[0]) > MAX_LINE_BYTES
        rest = lines.pop()
        pending = [rest] if rest else []
        held = len(rest)
        batch = [line + b"\n" for line in lines]
        if over:
            batch[0] = _OverLongLine()
            over = False
        yield batch


def _chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """What the stream gives, read after read, the first without a byte order mark."""
    first = _without_bom(read(_READ), read)
    if first:  # empty when the read held the mark alone: not yet the end of the stream
        yield first
    while True:
        yield read(_READ)


def _without_bom(data: bytes, read: Callable[[int], bytes]) -> bytes:
    """The stream's first bytes without the byte order mark a Windows tool writes first
    (`records.without_bom`, as the inbox and replay files): the first post was refused as "not
    valid JSON: Unexpected UTF-8 BOM". A mark that arrives in pieces is read whole first."""
    if data[:1] != b"\xef":
        return data  # no mark: the sources' module (and the database schema it imports) not loaded
    from siaga.sources.records import BOM, without_bom

    while len(data) < len(BOM) and BOM.startswith(data):
        more = read(len(BOM) - len(data))
        if not more:
            break
        data += more
    return without_bom(data)


class _OverLongLine(str):
    """Stands for a line longer than MAX_LINE_BYTES, of which only the count was kept (a 50 MB
    line once took 5 GB and minutes to tag). Not bytes, so `_tag_stream` gives it to
    `_read_post`, which refuses it like any other bad line; no test on the way of an ordinary
    line."""

    def __new__(cls) -> "_OverLongLine":
        return super().__new__(cls, f"longer than {MAX_LINE_BYTES} bytes, the limit of a line: not read")


# The types `json` decodes a plain value to (a float also when finite): exact types, so a set.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})
# The C scanner `json.loads` runs, called directly for a line that is one object and its "\n":
# `json.loads` would also look for whitespace around it with two regex matches, a tenth of the
# reading; any other line still goes through `json.loads`.
_scan_object = json.JSONDecoder().scan_once


def _fast_decoder() -> Callable[[bytes], Any]:
    """msgspec's JSON decoder (a dependency of Airflow's, pinned by constraints.txt): a line of
    the tag-speed check's tweets in 0.5 us against 1.3 us for `json`'s scanner, and no decode
    to `str` first; about 0.8 us a post in all, for 20 to 30 ms of CPU importing it once (a
    stream of more than some 30,000 posts gains). Imported here, not with the module: every
    `siaga` command imports this one."""
    import msgspec.json

    return msgspec.json.Decoder().decode


def _read_plain_post(line: bytes, decode: Callable[[bytes], Any] | None = None) -> dict[str, Any] | None:
    """The post of an ordinary line, or None when `_read_post` must look (and name what is
    wrong). Ordinary: UTF-8, an object of plain values, lat/lon numbers on the globe, and a
    text and id that are valid Unicode without NUL (only a \\u escape can put a NUL or a lone
    surrogate into a string: raw, they are not UTF-8 or not JSON; `json.dumps` writes every
    non-ASCII character as one, so a third of real lines have them). Every check of
    `_read_post` then holds, and `siaga tag` need not import the sources' schema (and the
    database models it is measured against).

    `decode` (`_fast_decoder`) reads the line first when given: what it accepts (UTF-8, one
    JSON value, finite numbers, no lone surrogate) `json.loads` reads the same, to the types
    (tests/test_tag_fast_path.py); what it refuses ("NaN", "1e400", "\\ud800", a BOM) `json`
    decides, as without it."""
    escaped = b"\\u" in line
    post = None
    if decode is not None:
        try:
            post = decode(line)
        except Exception:  # noqa: BLE001 -- `json` below decides, and names what is wrong
            post = None
    try:
        text = "" if post is not None else line.decode("utf-8")
        if post is None and text[:1] == "{" and text[-2:] == "}\n":
            post, end = _scan_object(text, 0)
            if end != len(text) - 1:
                post = None  # more after the object: `json.loads` decides
        if post is None:
            post = json.loads(text)
    except Exception:  # noqa: BLE001 -- _read_post says what is wrong
        return None
    body = post.get("text") if type(post) is dict else None
    if type(body) is not str or len(body) > MAX_TEXT:
        return None
    if escaped and not (_sound_string(body) and (type(post.get("id")) is not str or _sound_string(post["id"]))):
        return None
    plain = _PLAIN_TYPES
    for value in post.values():
        if type(value) not in plain and not (type(value) is float and math.isfinite(value)):
            return None
    lat, lon = post.get("lat"), post.get("lon")
    if lat is not None:
        if type(lat) not in (int, float) or not -90 <= lat <= 90:
            return None
        post["lat"] = float(lat)
    if lon is not None:
        if type(lon) not in (int, float) or not -180 <= lon <= 180:
            return None
        post["lon"] = float(lon)
    return post


def _sound_string(value: str) -> bool:
    """What `sources.schema.check_string` accepts of a string of any length: no NUL, no lone
    surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# A coordinate written as a string: a decimal number as JSON writes one (a sign, a point, an
# exponent; spaces around). `float` alone also read "1_0" as 10, Arabic-Indic digits, "0x" no,
# "nan" and "inf": a typo became a place.
_DECIMAL = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*", re.ASCII)


def _read_post(line: str | bytes) -> dict[str, Any]:
    from siaga.sources.records import decode_line
    from siaga.sources.schema import check_number, check_string

    if isinstance(line, _OverLongLine):
        raise ValueError(line)
    post = decode_line(line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass"))
    if not isinstance(post, dict) or not isinstance(post.get("text"), str):
        raise ValueError("expected an object with a string field 'text'")
    check_string(post["text"], "text", MAX_TEXT)
    _check_echoed(post.get("id"), "id")
    for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
        if post.get(key) is not None:
            if isinstance(post[key], str):  # "-8.1" was accepted before: keep it
                if _DECIMAL.fullmatch(post[key]) is None:
                    raise ValueError(f"field '{key}' is not a number")
                post[key] = float(post[key])
            post[key] = check_number(post[key], key, low, high)
    return post


def _check_echoed(value: Any, field: str) -> None:
    """Every string of an id, at any depth (`["a"]`, `{"k": "a"}`), is valid Unicode without
    NUL: the id is echoed, and a lone surrogate in a list id was refused only when the answer
    was written ("unexpected UnicodeEncodeError"), and printed by `--explain` as if sound."""
    from siaga.sources.schema import check_string

    stack = [(value, field)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            check_string(node, path, len(node))
        elif isinstance(node, dict):
            for name, inner in node.items():
                check_string(name, path, len(name))
                stack.append((inner, f"{path}.{name}"))
        elif isinstance(node, list):
            stack.extend((inner, f"{path}[{i}]") for i, inner in enumerate(node))


def _explain(post: dict[str, Any], result: Any, tagger: Any) -> str:
    from siaga.messages import one_line

    # the post on one line without control characters: its escape sequences would otherwise
    # act on the operator's terminal (clear it, retitle it, fake lines with "\r")
    lines = [f"post {post.get('id')!r}: {one_line(post['text'])}"]
    explained = tagger.hazards.explain(post["text"])
    if not explained:
        lines.append("  hazards: none")
    for match in explained:
        verdict = "MATCH" if match.hazard in {m.hazard for m in result.hazards} else "vetoed"
        lines.append(f"  hazard {match.hazard}: {verdict}")
        lines.append(f"    terms: {', '.join(match.terms) or '-'}")
        if match.vetoed_by:
            lines.append(f"    vetoed by: {', '.join(match.vetoed_by)}")
        if match.severity_cues:
            lines.append(f"    severity cues: {', '.join(match.severity_cues)}")
        if match.via_road:
            lines.append("    added as the traffic consequence of a hazard on a road")
    if not result.geotag.places:
        lines.append("  places: none")
    for place in result.geotag.places:
        where = ", ".join(x for x in (place.village, place.district) if x) or "-"
        flag = " (low confidence)" if place.low_confidence else ""
        span = post["text"][place.span[0]:place.span[1]] if place.span else "coordinates"
        lines.append(
            f"  place {place.kind} {place.name!r} [{where}] from {span!r}: confidence {place.confidence:.2f}{flag}; {place.reason}"
        )
    lines.append(f"  in region: {'yes' if result.geotag.in_region else 'no'}")
    return "\n".join(lines)

