"""
### Siaga ingest

Polls every enabled source in `config/sources.yaml` every minute, or every `SIAGA_POLL_INTERVAL`
seconds (`siaga.settings.poll_interval`), one mapped task per source, so one broken source fails
and retries alone; stores new posts once each, quarantines bad input, and only
then advances the source's cursor. When posts were stored it updates the `siaga://posts` asset,
which starts the detect DAG. A source with `push: true` also starts a run the moment it announces
a post (`siaga_push`: the triggerer listens to its stream, or watches a feed or an inbox folder
every few seconds); such a run polls only that source, and reads the posts the stream named by
id where the source can (a Mastodon search).
"""
from datetime import timedelta

from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk import Asset, dag, get_current_context, task

from siaga import pipeline, settings
from siaga.pipeline import run_time
from siaga_push import announced_posts, ingest_schedule, pushed_sources

POSTS = Asset(pipeline.POSTS_URI)


@dag(
    schedule=ingest_schedule(settings.poll_interval()),
    catchup=False,
    max_active_runs=1,
    tags=["siaga"],
    default_args={"retries": 3, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def siaga_ingest():
    @task
    def enabled_sources() -> list[str]:
        return pipeline.source_names(only=pushed_sources(get_current_context()))

    @task(outlets=[POSTS], map_index_template="{{ task.op_kwargs['source_name'] }}")
    def ingest_source(source_name: str) -> dict:
        context = get_current_context()
        report = pipeline.ingest(source_name, run_time(context), announced=announced_posts(context, source_name))
        if report["new_posts"] == 0:
            raise AirflowSkipException(f"{source_name}: no new posts")  # no asset event, no detect run
        return report

    ingest_source.expand(source_name=enabled_sources())


siaga_ingest()
