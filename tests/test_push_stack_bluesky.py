"""A Bluesky post seen on Jetstream starts ingest through the real triggerer, scheduler and
Celery worker (PostgreSQL, Redis), with the poll an hour away: the alert can only come by the
push.

The fake AppView (search) and the fake Jetstream run in this process; the source has
`push: true` and `jetstream:` pointing at the fake, so the triggerer reads the fake firehose
with `siaga.sources.jetstream` and filters it to the source's query words. Two residents report
a fire in Sekumpul among posts that must not wake anything; both reports must be stored by
ingest runs the push started, and the alert must reach the fake Slack server once.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from support.fakeapis import FakeApis
from support.fakejetstream import FakeJetstream
from support.services import require_services
from siaga import store
from siaga_dev import airflow_stack as st
from siaga_dev.fakeslack import FakeSlack

pytestmark = [pytest.mark.celery, pytest.mark.timeout(560)]

TOKEN = "xoxb-push-stack-bluesky"
REDIS_DB = 15  # only this file uses it (test_push_stack.py 11, the benchmark 12, the celery stack tests 13 and 14)
VILLAGE = "Sekumpul"
REPORTS = (("warga1", f"Kebakaran rumah di Desa {VILLAGE}, api cepat membesar"),
           ("warga2", f"Ada KEBAKARAN di {VILLAGE}, asap hitam tebal terlihat dari jauh"))


def test_a_post_on_jetstream_is_ingested_and_alerted_without_waiting_for_the_poll(tmp_path):
    require_services()
    with FakeApis() as appview, FakeJetstream() as firehose:
        slack = FakeSlack(token=TOKEN).start()
        siaga_db = st.create_database("siaga_push_bsky")
        url = st.pg_url(siaga_db)
        stack = st.AirflowStack(root=tmp_path / "stack", redis_db=REDIS_DB, task_env={
            "SIAGA_DB_URL": url,
            "SIAGA_CONFIG_DIR": str(st.config_copy(tmp_path / "config", [
                {"name": "bluesky_bali", "kind": "bluesky", "appview": appview.url, "push": True, "jetstream": firehose.url,
                 "language": "id", "queries": ["kebakaran"]}])),
            "SIAGA_SLACK_TOKEN": TOKEN,
            "SIAGA_SLACK_BASE_URL": slack.base_url,
            "SIAGA_AUTHOR_KEY": "push-stack-author-key",
        }, extra_env={"SIAGA_POLL_INTERVAL": "3600"})  # the timetable's next poll is an hour away
        ok = False
        try:
            store.migrate(url)
            store.engine_for(url).dispose()
            stack.start()
            stack.start_worker("push-w1")
            st.wait_for(lambda: firehose.listening >= 1, 240, "the triggerer listening to Jetstream", stack)
            st.wait_for(lambda: stack.task_states(
                "select 1 from dag_run where dag_id = 'siaga_ingest' and state = 'success'"), 240,
                "the first scheduled ingest run", stack)
            firehose.post("Kebakaran hutan di Kanada", langs=["en"])  # not the source's language
            firehose.post("Kebakaranmu lucu sekali", langs=["id"])  # the word inside a longer one
            assert firehose.listening >= 1
            now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for i, (author, text) in enumerate(REPORTS, start=1):
                record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": now, "langs": ["id"]}
                appview.skeet(f"3lfire{i}", 0, text, handle=f"{author}.bsky.social", indexedAt=now, record=record)
                firehose.post(text, langs=["id"], did=f"did:plc:{author:x<24}")
            headline = re.compile(rf"— (?:Desa )?{VILLAGE}, Kec\.")
            st.wait_for(lambda: any(headline.search(m.get("text") or "") for m in slack.messages()), 300,
                        f"the alert naming {VILLAGE}", stack)
            runs = dict(stack.task_states(
                "select run_type, count(*) from dag_run where dag_id = 'siaga_ingest' group by run_type"))
            assert runs.get("scheduled") == 1 and runs.get("asset_triggered", 0) >= 1, runs
            stored = st.query(siaga_db, "select count(*) from posts")[0][0]
            assert stored == len(REPORTS)
            alerts = [m for m in slack.messages() if headline.search(m.get("text") or "")]
            assert len(alerts) == 1
            ok = True
        finally:
            if not ok:
                print(stack.dump_logs())
            stack.stop()
            slack.close()
            st.drop_database(siaga_db)
