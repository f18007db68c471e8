"""An operator saving a config file while a run is reading it: the version kept as the last
good one must be the version that was validated, never the save that came after."""
from __future__ import annotations

from support.logs import errors_logged


def test_an_alias_file_saved_bad_while_its_matcher_loads_is_not_kept_as_the_good_one(own_config_and_cache, monkeypatch):
    """The matcher was built (or found in the cache) from the good text, then the file was read
    again to keep a copy: a typo saved in between became the "last good" copy, and from the next
    run on, with the file and its copy both refused, every detect run failed."""
    from siaga import geotag, matcher_cache
    from siaga.geotag import default_geotagger

    aliases = own_config_and_cache / "aliases.yaml"
    good = aliases.read_bytes()
    bad = good.replace(b"  - name: Lovina", b"  - name: [Lovina", 1)
    assert bad != good
    real = geotag.cached_geotagger

    def operator_saves_meanwhile(*args, **kwargs):
        tagger = real(*args, **kwargs)
        aliases.write_bytes(bad)  # saved just after the matcher was loaded from the good text
        return tagger

    default_geotagger()  # a run with the good file keeps it
    kept = matcher_cache.last_good_path(aliases.name)
    assert kept.read_bytes() == good
    default_geotagger.cache_clear()
    monkeypatch.setattr(geotag, "cached_geotagger", operator_saves_meanwhile)
    default_geotagger()
    monkeypatch.setattr(geotag, "cached_geotagger", real)
    assert kept.read_bytes() == good

    default_geotagger.cache_clear()  # the next detect task, with the typo still in the file
    with errors_logged("siaga.geotag") as refusals:
        tagger = default_geotagger()
    assert refusals and refusals[0].startswith("REFUSED") and "last good version in force" in refusals[0]
    assert "Lovina" in [p.name for p in tagger.tag("Banjir di Lovina pagi ini").places]
