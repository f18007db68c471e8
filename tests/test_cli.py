"""The `siaga` command line: the `siaga tag` contract as measured from outside, and the operator
commands' errors."""
from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from siaga import cli, store

CONTRACT_PLACE_KEYS = {"kind", "name", "village", "district", "code", "lon", "lat", "confidence", "span", "reason"}


def run_siaga(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "siaga.cli", *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_tag_contract_one_object_per_post_in_order():
    posts = [
        {"id": "a", "text": "Banjir setinggi lutut di Desa Sangsit, Kec. Sawan"},
        {"id": 2, "text": "Selamat pagi semua"},
        {"id": "c", "text": "macet parah di Denpasar"},
        {"id": "d", "text": "pohon tumbang", "lat": -8.1125, "lon": 115.0905},
    ]
    out = run_siaga(["tag"], "\n".join(json.dumps(p) for p in posts) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", 2, "c", "d"]
    for row in rows:
        assert set(row) == {"id", "hazards", "places", "in_region"}
        for place in row["places"]:
            assert set(place) == CONTRACT_PLACE_KEYS
    flood = rows[0]
    assert flood["hazards"] == ["flood"] and flood["in_region"] is True
    village = next(p for p in flood["places"] if p["kind"] == "village")
    assert (village["village"], village["district"]) == ("Sangsit", "Sawan")
    start, end = village["span"]
    assert posts[0]["text"][start:end] == "Sangsit"
    assert rows[1]["hazards"] == [] and rows[1]["in_region"] is False
    assert rows[2]["hazards"] == ["traffic_jam"] and rows[2]["in_region"] is False
    point = rows[3]
    assert "fallen_tree" in point["hazards"] and point["in_region"] is True
    assert any(p["span"] is None and p["village"] for p in point["places"])


def test_tag_reports_a_bad_line_and_keeps_going():
    out = run_siaga(["tag"], '{"id": 1, "text": "banjir"}\nnot json\n{"id": 3, "text": "gempa"}\n')
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("id") for r in rows] == [1, None, 3]
    assert "line 2" in rows[1]["error"] and "stdin line 2" in out.stderr


def test_tag_reports_hostile_lines_and_goes_on():
    """Deep nesting once stopped the whole stream; bytes that are not UTF-8, numbers that are
    not numbers and lone surrogates must each cost one line too."""
    lines = [
        b'{"id": 1, "text": "banjir di Sangsit"}',
        b'{"id": 2, "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"id": 3, "text": "air \xff naik"}',
        b'{"id": 4, "text": "gempa", "lat": NaN}',
        b'{"id": 5, "text": "x", "lon": 1' + b"0" * 5000 + b"}",
        b'{"id": "\\ud800", "text": "longsor"}',
        '{"id": 7, "text": "macet\u2028di Seririt"}'.encode(),
        b'{"id": 8, "text": "pohon tumbang", "lat": "-8.11", "lon": 115.09}',
    ]
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input=b"\n".join(lines) + b"\n", capture_output=True, timeout=120)
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, None, None, None, None, None, 7, 8]  # one object per line, in order
    assert all(set(r) == {"id", "error"} for r in rows[1:6])
    errors = [r["error"] for r in rows[1:6]]
    for n, words in zip(range(2, 7), ("nested deeper", "not valid UTF-8", "field 'lat'", "field 'lon'", "lone surrogate")):
        assert errors[n - 2].startswith(f"line {n}: ") and words in errors[n - 2], errors[n - 2]
        assert f"stdin line {n}: " in out.stderr.decode()
    assert set(rows[7]) == {"id", "hazards", "places", "in_region"} and rows[7]["in_region"] is True


def test_tag_explain_says_why(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": 1, "text": "Banjir diskon besar! Tapi banjir sepinggang di Sangsit"}\n'))
    assert cli.main(["tag", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "hazard flood: MATCH" in text
    assert "vetoed by" in text and "severity cues" in text
    assert "place village 'Sangsit' [Sangsit, Sawan]" in text


def test_hazards_check_refuses_a_broken_list(tmp_path, capsys):
    bad = tmp_path / "hazards"
    bad.mkdir()
    (bad / "flood.yaml").write_text("id: flood\nlabels: {id: Banjir, en: Flood}\nagency: bpbd\nterms: banjir\n")
    assert cli.main(["hazards", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "flood.yaml" in err and "terms" in err


def test_hazards_check_passes_the_repository_lists(capsys):
    assert cli.main(["hazards", "check"]) == 0
    assert "ok" in capsys.readouterr().out


def test_hazards_check_of_a_config_folder_checks_its_hazard_lists_only(capsys):
    """Not routing.yaml or aliases.yaml read as if they were hazard lists."""
    from siaga import settings

    assert cli.main(["hazards", "check", str(settings.config_dir())]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == f"{settings.config_dir() / 'hazards'}: ok (0 warning(s))" and out.err == ""


def test_outbox_retry_requeues_only_dead_letters(sqlite_url, monkeypatch, capsys):
    from datetime import datetime, timezone

    from siaga import store

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low", opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        session.add(store.OutboxMessage(dedup_key="k", incident_id=incident.id, receiver="bpbd", channel="#c", kind="new", payload={}, state="dead", attempts=8, next_attempt_at=t))
    assert cli.main(["outbox", "--retry", "1"]) == 0
    assert cli.main(["outbox", "--retry", "1"]) == 1  # no longer dead
    with store.session_scope(sqlite_url) as session:
        row = session.get(store.OutboxMessage, 1)
        assert row.state == "pending" and row.attempts == 1  # a retry checks Slack before posting
    assert "not a dead letter (it is pending)" in capsys.readouterr().out
    # a mistyped id was "not a dead letter, nothing changed", as if there were such a message
    assert cli.main(["outbox", "--retry", "51"]) == 2
    assert capsys.readouterr().err.strip() == f"siaga outbox: no outbox message 51 in {sqlite_url}; `siaga outbox` lists the dead letters"


def test_quarantine_counts_bad_lines_with_where_and_why(sqlite_url, monkeypatch, capsys, tmp_path):
    from datetime import datetime, timezone

    from siaga import ingest
    from siaga.sources import ReplaySource

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1", "created_at": "2026-01-15T08:00:00+08:00", "text": "banjir"}\n{broken\n')
    ingest.ingest(ReplaySource("feed", feed), datetime(2026, 1, 16, tzinfo=timezone.utc), sqlite_url)
    assert cli.main(["quarantine", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_source"] == {"feed": 1}
    (entry,) = report["latest"]
    assert entry["location"] == "feed.jsonl:2" and "not valid JSON" in entry["reason"]


def test_outbox_summary_counts_states(sqlite_url, monkeypatch, capsys):
    from datetime import datetime, timezone

    from siaga import store

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low", opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        for i, state in enumerate(["sent", "sent", "pending", "dead"]):
            session.add(store.OutboxMessage(dedup_key=str(i), incident_id=incident.id, receiver="bpbd", channel="#c", kind="new", payload={}, state=state, next_attempt_at=t))
    assert cli.main(["outbox", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["states"] == {"sent": 2, "pending": 1, "dead": 1}
    assert [d["id"] for d in report["dead"]] == [4]


# --- a command line that talks to people ----------------------------------------------------------

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pytest  # noqa: E402

SUBCOMMANDS = ["tag", "check", "hazards", "hazards check", "backtest", "terms", "db", "db migrate", "outbox", "quarantine",
               "export", "slack-listen", "scenario", "demo", "live"]
DB_COMMANDS = [["outbox"], ["quarantine"], ["db", "migrate"], ["terms"], ["export", "--incident", "1"],
               ["backtest", "--config", "config", "--from", "2026-01-15T06:00", "--to", "2026-01-15T12:00"]]


def _help_sections(text: str) -> tuple[str, list[str]]:
    """The description (the block after the usage) and every option's or argument's help line."""
    blocks = text.split("\n\n")
    description = next((b for b in blocks[1:] if b.strip() and not b.lstrip().startswith(("options:", "positional arguments:"))), "")
    return description, blocks


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_and_argument_is_described(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command.split(), "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    description, _ = _help_sections(text)
    assert len(description.split()) >= 5, f"`siaga {command} --help` has no description:\n{text}"
    sub = cli.build_parser()
    for word in command.split():
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    for action in sub._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and len(action.help.split()) >= 2, f"siaga {command}: {action.option_strings or action.dest} has no help"


def test_an_id_with_a_unicode_line_separator_keeps_its_answer_on_one_line():
    """JSON leaves U+2028, U+2029 and U+0085 raw in a string, and Python's str.splitlines (and
    older JavaScript) breaks lines there: an echoed id split its post's answer in two."""
    ids = ["a\u2028b", "c\u2029d", "e\x85f", {"nested": ["g\u2028h"]}, "plain"]
    posts = [{"id": post_id, "text": "banjir di Sangsit"} for post_id in ids]
    for ascii_only in (False, True):
        out = run_siaga(["tag"], "".join(json.dumps(p, ensure_ascii=ascii_only) + "\n" for p in posts))
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert [json.loads(line)["id"] for line in lines] == ids


@pytest.mark.parametrize("args, says", [
    (["live", "--port", "70000"], "argument --port: must be from 1 to 65535, got 70000"),  # was bind()'s OverflowError
    (["live", "--slack-port", "-1"], "argument --slack-port: must be from 1 to 65535, got -1"),
    (["live", "--speed", "nan"], "argument --speed: must be from 0.001 to 100000 times real time, got nan"),  # a ValueError
    (["live", "--speed", "inf"], "argument --speed: must be from 0.001 to 100000 times real time, got inf"),  # an OverflowError
    (["live", "--speed", "-3"], "argument --speed: must be from 0.001 to 100000 times real time, got -3"),
    (["live", "--speed", "fast"], "argument --speed: not a number: 'fast'"),
    (["demo", "--steps", "0"], "argument --steps: must be from 1 to 100, got 0"),  # a ZeroDivisionError
])
def test_dev_commands_refuse_values_they_cannot_run_with_before_starting_anything(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"siaga {args[0]}: error: {says}"


@pytest.mark.parametrize("args", [["check"], ["hazards", "check"], ["tag", "--config"],
                                  ["backtest", "--from", "2026-01-15T06:00", "--to", "2026-01-15T12:00", "--config"]],
                         ids=lambda a: " ".join(a[:2]))
def test_a_path_the_system_refuses_is_one_line_not_a_traceback(args):
    """A folder name longer than the system allows (ENAMETOOLONG) came out of pathlib's is_dir
    as an OSError traceback. (In its own process: the backtest loads libraries that set up
    logging on the stream they find.)"""
    out = run_siaga([*args, "x" * 300])
    err = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(err) == 1, out.stderr[-2000:]
    assert err[0].startswith(f"siaga {args[0]}: cannot use 'xxx") and err[0].endswith("…': File name too long"), err


def test_every_database_command_takes_db():
    parser = cli.build_parser()
    for args in DB_COMMANDS + [["slack-listen"]]:
        assert parser.parse_args([*args, "--db", "sqlite:///x.db"]).db == "sqlite:///x.db", args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_urls(tmp_path) -> list[str]:
    return [f"sqlite:///{tmp_path}/no/such/folder/siaga.db", f"postgresql+psycopg2://siaga:secret@127.0.0.1:{_free_port()}/siaga",
            "not a database url"]


@pytest.mark.parametrize("args", DB_COMMANDS, ids=lambda a: a[0])
def test_an_unreachable_database_is_one_line_and_a_non_zero_exit(args, tmp_path):
    for url in _unreachable_urls(tmp_path):
        out = run_siaga([*args, "--db", url])
        assert out.returncode == 1, (url, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"siaga {args[0]}: "), (url, out.stderr)
        assert "Traceback" not in out.stderr and "secret" not in out.stderr  # the password never shows
        assert "database" in lines[0]


@pytest.mark.parametrize("url, says", [
    ("postgresql://siaga:s3cret@db:54x2/siaga", "cannot read the database URL postgresql://siaga:***@db:54x2/siaga: invalid literal"),
    ("postgresql://siaga:s3cret@[::1/siaga", "cannot read the database URL"),
    ("mysql://siaga:s3cret@db/siaga", "Siaga runs on SQLite or PostgreSQL"),
    ("postgresql+pg8000://siaga:s3cret@db/siaga", "the driver of postgresql+pg8000 is not installed"),
    ("postgresql+asyncpg://siaga:s3cret@127.0.0.1:1/siaga", "postgresql+asyncpg is an asyncio driver"),
    ("sqlite:///{tmp}/siaga.db?timeout=abc&password=s3cret", "could not convert string to float"),
])
@pytest.mark.parametrize("args", [["outbox"], ["db", "migrate"]], ids=lambda a: a[0])
def test_a_database_url_siaga_cannot_use_is_one_line_saying_why(args, url, says, tmp_path):
    """A mistyped port, a driver not installed, an asyncio driver, an option SQLAlchemy cannot
    convert: ValueError, ModuleNotFoundError and MissingGreenlet tracebacks from SQLAlchemy."""
    url = url.format(tmp=tmp_path)
    if url.startswith("sqlite"):
        (tmp_path / "siaga.db").touch()
    out = run_siaga([*args, "--db", url])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith(f"siaga {args[0]}: ") and says in lines[0] and "s3cret" not in lines[0], lines


READ_ONLY_COMMANDS = [args for args in DB_COMMANDS if args[0] != "db"] + [["slack-listen"]]


@pytest.mark.parametrize("args", [a for a in DB_COMMANDS if a[0] != "db"], ids=lambda a: a[0])
def test_a_command_that_reads_never_creates_siaga_s_tables(args, tmp_path):
    """`siaga terms` and `siaga backtest` migrated the database they were pointed at: an empty
    file, or another application's PostgreSQL database given by mistake, got Siaga's tables."""
    target = tmp_path / "other.db"
    sqlite3.connect(target).close()  # an existing, empty SQLite file
    out = run_siaga([*args, "--db", f"sqlite:///{target}"])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "has no Siaga tables yet: run `siaga db migrate`" in lines[0], out.stderr
    with sqlite3.connect(target) as db:
        assert db.execute("select name from sqlite_master").fetchall() == []


@pytest.mark.parametrize("args", [a for a in DB_COMMANDS if a[0] not in ("db", "backtest")], ids=lambda a: a[0])
def test_a_read_only_database_can_be_read(args, tmp_path):
    """A snapshot on a read-only mount: every connection's `PRAGMA journal_mode=WAL` is a write,
    so even `siaga outbox` said "attempt to write a readonly database"."""
    path = tmp_path / "snapshot.db"
    assert run_siaga(["db", "migrate", "--db", f"sqlite:///{path}"]).returncode == 0
    with sqlite3.connect(path) as db:
        db.execute("pragma journal_mode=DELETE")
    out = run_siaga([*args, "--db", f"sqlite:///file:{path}?mode=ro&uri=true"])
    assert "readonly" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert out.returncode == (2 if args[0] == "export" else 0), out.stderr  # no incident 1 in an empty database


def test_a_database_a_newer_siaga_migrated_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    assert run_siaga(["db", "migrate", "--db", url]).returncode == 0
    with sqlite3.connect(tmp_path / "siaga.db") as db:
        db.execute("update alembic_version set version_num = '9999abcd'")
    out = run_siaga(["db", "migrate", "--db", url])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "is at a schema this Siaga does not know" in lines[0] and "9999abcd" in lines[0]


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=lambda a: a[0])
def test_a_mistyped_sqlite_path_is_refused_by_name_and_nothing_is_created(args, tmp_path):
    """SQLite creates a missing file on connect: a command that only reads, given a typo, left an
    empty database behind (and `siaga terms` then reported on it as if it were the real one)."""
    folder = tmp_path / "db-folder"
    folder.mkdir()
    for target in (tmp_path / "siag.db", folder):
        out = run_siaga([*args, "--db", f"sqlite:///{target}"])
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1, (target, out.stdout, out.stderr)
        assert lines[0].startswith(f"siaga {args[0]}: no database at {target}: "), lines
        assert sorted(p.name for p in tmp_path.iterdir()) == ["db-folder"] and not any(folder.iterdir())


def test_slack_listen_with_the_database_or_slack_out_of_reach_says_so_in_one_line(tmp_path, sqlite_url):
    env = {**os.environ, "SIAGA_SLACK_APP_TOKEN": "xapp-1-test", "SIAGA_SLACK_TOKEN": "xoxb-test",
           "SIAGA_SLACK_BASE_URL": f"http://127.0.0.1:{_free_port()}/api/"}
    env.pop("AIRFLOW_HOME", None)
    for args, words in (([ "--db", f"postgresql+psycopg2://x@127.0.0.1:{_free_port()}/x"], "database"),
                        (["--db", sqlite_url], "Slack")):
        out = subprocess.run([sys.executable, "-m", "siaga.cli", "slack-listen", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1, out.stderr
        assert lines[0].startswith("siaga slack-listen: ") and words in lines[0], lines


def test_a_closed_pipe_ends_quietly():
    """`siaga scenario | head -1`: no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "siaga.cli", "scenario"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `head` does
    _, err = proc.communicate(timeout=120)
    assert json.loads(first)["id"] == "demo-0001"
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_a_closed_pipe_in_a_shell_pipeline(tmp_path):
    out = subprocess.run(f"'{sys.executable}' -m siaga.cli scenario | head -c 10", shell=True, capture_output=True, text=True,
                         timeout=120)
    assert len(out.stdout) == 10 and "Traceback" not in out.stderr, out.stderr


def _outbox_rows(url: str, states: list[str]) -> None:
    from siaga import store

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low",
                                  opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        for i, state in enumerate(states):
            session.add(store.OutboxMessage(dedup_key=str(i), incident_id=incident.id, receiver="bpbd", channel="#bpbd-siaga",
                                            kind="new", payload={}, state=state, next_attempt_at=t,
                                            last_error="channel_not_found" if state == "dead" else None))


def test_outbox_answers_a_person_and_json_for_scripts(sqlite_url, capsys):
    assert cli.main(["outbox", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "empty" in out and not out.lstrip().startswith("{")
    _outbox_rows(sqlite_url, ["sent", "sent", "pending", "dead"])
    assert cli.main(["outbox", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Outbox: 4 messages (2 sent, 1 ") and "1 dead letter" in out
    assert "channel_not_found" in out and "#bpbd-siaga" in out and "--retry" in out
    assert cli.main(["outbox", "--db", sqlite_url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["states"] == {"sent": 2, "pending": 1, "dead": 1} and doc["dead"][0]["error"] == "channel_not_found"


def test_quarantine_answers_a_person_and_json_for_scripts(sqlite_url, capsys, tmp_path):
    from siaga import ingest
    from siaga.sources import ReplaySource

    assert cli.main(["quarantine", "--db", sqlite_url]) == 0
    assert "Nothing quarantined" in capsys.readouterr().out
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1", "created_at": "2026-01-15T08:00:00+08:00", "text": "banjir"}\n{broken\n')
    ingest.ingest(ReplaySource("feed", feed), datetime(2026, 1, 16, tzinfo=timezone.utc), sqlite_url)
    assert cli.main(["quarantine", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Quarantined: 1 record from 1 source.") and "feed.jsonl:2" in out and "not valid JSON" in out
    assert cli.main(["quarantine", "--db", sqlite_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["per_source"] == {"feed": 1}


def test_outbox_and_quarantine_show_what_they_stored_without_its_secrets(sqlite_url, capsys):
    """A stored error may quote a server's answer (a token), a place a feed's URL with its
    ?token= (rows stored before the sources redacted it): shown as stored, they were printed."""
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        session.add(store.Quarantine(source="feed", fingerprint="f" * 64, location="https://bpbd.example/rss?token=SECRETFEED item 3",
                                     reason="refused: Bearer xoxb-1-2-SECRETBOT", raw="{}"))
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low",
                                  opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        session.add(store.OutboxMessage(dedup_key="k", incident_id=incident.id, receiver="bpbd", channel="#c", kind="new", payload={},
                                        state="dead", attempts=8, next_attempt_at=t, last_error="proxy said: token xoxb-9-9-SECRETDEAD"))
    for args in (["quarantine"], ["quarantine", "--json"], ["outbox"], ["outbox", "--json"]):
        assert cli.main([*args, "--db", sqlite_url]) == 0, args
        said = capsys.readouterr()
        assert "SECRET" not in said.out + said.err, (args, said.out)
        assert ("token=***" in said.out) if args[0] == "quarantine" else ("proxy said: token ***" in said.out), said.out


def test_db_migrate_says_where_and_json(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert cli.main(["db", "migrate", "--db", url]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "new.db") in out and "newest schema" in out
    assert cli.main(["db", "migrate", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"]


def test_read_only_commands_load_no_airflow_or_scipy(sqlite_url):
    """`siaga outbox` and `siaga quarantine` need neither Airflow nor the detection stack."""
    code = ("import sys; from siaga import cli; cli.main(['outbox', '--db', sys.argv[1]]); cli.main(['quarantine', '--db', sys.argv[1]]);"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'scipy', 'pandas', 'shapely'}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    out = subprocess.run([sys.executable, "-c", code, sqlite_url], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_no_library_log_lines_unless_verbose(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    quiet = run_siaga(["db", "migrate", "--db", url])
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = run_siaga(["db", "migrate", "--db", f"sqlite:///{tmp_path / 'other.db'}", "-v"])
    assert loud.returncode == 0 and "alembic" in loud.stderr


def test_export_says_what_it_wrote_where(sqlite_url, tmp_path):
    target = tmp_path / "incidents.csv"
    out = run_siaga(["export", "--from", "2026-01-01", "--to", "2026-01-31", "--db", sqlite_url, "--out", str(target)])
    assert out.returncode == 0, out.stderr
    assert target.exists() and f"to {target}" in out.stdout and "0 incidents as csv" in out.stdout


def test_export_refuses_to_write_over_the_database_it_reads(sqlite_url, tmp_path):
    """`--out` naming the database file replaced it with the CSV: the next command said "file is
    not a database"."""
    database = store.sqlite_path(sqlite_url)
    before = database.read_bytes()
    out = run_siaga(["export", "--from", "2026-01-01", "--to", "2026-01-31", "--db", sqlite_url, "--out", str(database)])
    assert out.returncode == 2 and out.stderr.strip() == f"siaga export: {database} is the database the export reads: give another --out"
    assert database.read_bytes() == before


def test_backtest_draws_no_progress_bar_where_no_one_watches(sqlite_url):
    """A script's or a log's stderr got tqdm's bar redrawn in it: the bar is for a terminal."""
    from support.history import store_demo

    store_demo(sqlite_url)
    out = run_siaga(["backtest", "--config", "config", "--from", "2026-01-15T06:00", "--to", "2026-01-15T12:00", "--db", sqlite_url])
    assert out.returncode == 0 and "backtest:" not in out.stderr and "post/s" not in out.stderr, out.stderr


# Ids, counts and times outside what the database or the calendar holds: once OverflowError
# tracebacks (SQLite's 64-bit integers, datetime arithmetic reaching year 1), now usage errors.
OUT_OF_RANGE = [
    (["export", "--incident", "99999999999999999999999"], "--incident"),
    (["export", "--incident", "0"], "--incident"),
    (["outbox", "--retry", "9223372036854775808"], "--retry"),
    (["quarantine", "--latest", "99999999999999999999"], "--latest"),
    (["quarantine", "--latest", "-5"], "--latest"),
    (["backtest", "--config", "config", "--from", "0001-01-01", "--to", "0001-01-02"], "--from"),
    (["backtest", "--config", "config", "--from", "2026-01-01", "--to", "9999-12-31T23:59"], "--to"),
    (["terms", "--until", "9999-12-31T23:59"], "--until"),
]


@pytest.mark.parametrize("args,option", OUT_OF_RANGE, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_out_of_range_numbers_and_times_are_usage_errors(args, option, sqlite_url, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--db", sqlite_url])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and ("must be from" in err or "out of range" in err)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2**31))
def test_no_id_too_large_reaches_the_database(tmp_path_factory, number):
    url = f"sqlite:///{tmp_path_factory.getbasetemp()}/ids.db"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--incident", str(number), "--db", url])
    assert exit_.value.code == 2


TERMINAL_ESCAPES = "\x1b]0;pwned\x07\x1b[2J\r"


def test_quarantine_shows_hostile_places_without_their_control_characters(sqlite_url, capsys, tmp_path, author_key):
    """A record's place quotes what a source sent (here a file name): its escape sequences once
    reached the operator's terminal as they were."""
    from siaga import ingest
    from siaga.sources.inbox import InboxSource

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / f"wa{TERMINAL_ESCAPES}.jsonl").write_text("{broken\n")
    ingest.ingest(InboxSource("wa", inbox), datetime(2026, 1, 16, tzinfo=timezone.utc), sqlite_url)
    assert cli.main(["quarantine", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "wa]0;pwned[2J.jsonl:1" in out and not {"\x1b", "\x07", "\r"} & set(out)


def test_tag_explain_shows_the_post_without_its_control_characters():
    line = json.dumps({"id": "a", "text": f"banjir {TERMINAL_ESCAPES}di Sangsit"})
    out = run_siaga(["tag", "--explain"], line + "\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "post 'a': banjir ]0;pwned[2Jdi Sangsit"


def test_tag_with_a_broken_aliases_file_names_it_without_a_traceback(tmp_path):
    """The geotagger reads the deployment's aliases.yaml: a typo there was a traceback."""
    import shutil

    from siaga import settings as siaga_settings

    config = tmp_path / "config"
    shutil.copytree(siaga_settings.config_dir(), config)
    (config / "aliases.yaml").write_text("aliases: [\n", encoding="utf-8")
    env = {**os.environ, "SIAGA_CONFIG_DIR": str(config), "SIAGA_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input='{"id": "a", "text": "banjir"}\n',
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[0] == "siaga tag: the config cannot be used:"
    assert out.stderr.splitlines()[1].startswith(f"{config / 'aliases.yaml'}:2:1: (syntax)")


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("args", [["outbox"], ["quarantine"]], ids=lambda a: a[0])
def test_a_database_at_an_older_schema_says_to_migrate(db_url, args, capsys):
    """Before: "cannot use the database ...: no such column: outbox.claim_token", no way out named."""
    from alembic import command

    from siaga import store

    command.downgrade(store._alembic_config(db_url), "0004")  # before the outbox's fencing and quarantine's identity
    store.engine_for(db_url).dispose()
    assert cli.main([*args, "--db", db_url]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"siaga {args[0]}: the database ") and "is at an older schema" in line
    assert line.endswith("run `siaga db migrate`")


FULL_DISK = "/dev/full"  # Linux: every write to it fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not os.path.exists(FULL_DISK), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("args", [["scenario"], ["check", "--json"], ["hazards", "check"], ["tag"], ["export", "--from", "2026-01-01", "--to", "2026-01-02"]])
def test_output_that_cannot_be_written_is_one_line_not_a_traceback(args, sqlite_url):
    """`siaga check --json > report.json` on a full disk: every command wrote its answer with an
    `OSError: [Errno 28]` traceback (and the interpreter's exit flush one more)."""
    if args[0] == "export":
        args = [*args, "--db", sqlite_url]
    with open(FULL_DISK, "w") as full:
        out = subprocess.run([sys.executable, "-m", "siaga.cli", *args], input=b'{"id": 1, "text": "banjir"}\n', stdout=full,
                             stderr=subprocess.PIPE, timeout=120)
    err = out.stderr.decode()
    assert out.returncode == 1 and "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines() == [f"siaga {args[0]}: cannot write its output: No space left on device"]


@pytest.mark.parametrize("closed", ["stdin", "stdout"])
def test_tag_with_a_closed_stream_says_which(closed):
    """`siaga tag <&-` (or `>&-`) was an AttributeError traceback on None."""
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], stderr=subprocess.PIPE, timeout=120,
                         **{closed: None}, pass_fds=(), close_fds=True,
                         preexec_fn=lambda: os.close(0 if closed == "stdin" else 1))
    err = out.stderr.decode()
    assert out.returncode == 1 and "Traceback" not in err, err
    assert f"standard {'input' if closed == 'stdin' else 'output'} is closed" in err


@pytest.mark.parametrize("args", [["outbox", "--json"], ["outbox"], ["quarantine", "--json"], ["scenario"], ["check", "config", "--json"],
                                  ["db", "migrate", "--json"]], ids=" ".join)
def test_a_command_whose_answer_is_on_stdout_refuses_a_closed_one_in_one_line(args, sqlite_url):
    """`siaga outbox --json >&-` was an AttributeError traceback, `siaga outbox >&-` a silent success."""
    db = ["--db", sqlite_url] if args[0] in ("outbox", "quarantine", "db") else []
    out = subprocess.run([sys.executable, "-m", "siaga.cli", *args, *db], stderr=subprocess.PIPE, timeout=120,
                         stdout=None, close_fds=True, preexec_fn=lambda: os.close(1))
    err = out.stderr.decode()
    assert out.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"siaga {args[0]}: standard output is closed: nowhere to write the answer"]


@pytest.mark.parametrize("variable, value, says", [
    ("SIAGA_GAZETTEER", "nasional", "SIAGA_GAZETTEER: expected one of"),
    ("AIRFLOW_CONN_SIAGA_DB", '{"conn_type": "postgres", "password": "s3cret", host: "db"}', "AIRFLOW_CONN_SIAGA_DB: not a connection URI"),
    ("AIRFLOW_CONN_SIAGA_DB", '{"password": "s3cret"', "AIRFLOW_CONN_SIAGA_DB: not a connection URI"),
])
def test_an_environment_setting_that_cannot_be_used_is_one_line_naming_it(variable, value, says, tmp_path):
    """A ValueError or JSONDecodeError traceback from every command (and every DAG task)."""
    env = {**os.environ, variable: value, "SIAGA_DATA_DIR": str(tmp_path)}
    env.pop("SIAGA_DB_URL", None)
    args = ["tag"] if variable == "SIAGA_GAZETTEER" else ["outbox"]
    out = subprocess.run([sys.executable, "-m", "siaga.cli", *args], input='{"id": 1, "text": "banjir di Sangsit"}\n',
                         capture_output=True, text=True, timeout=300, env=env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert lines[0].startswith(f"siaga {args[0]}: {says}") and "s3cret" not in out.stderr, lines
