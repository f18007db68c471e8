"""What managers review after the fact: each incident's story (who posted, when Slack heard, who
acknowledged), its area on a map, how it grew, and the same as CSV, GeoJSON and CAP 1.2.

One module per concern: `report` reads an incident from the database, `places` gives the
polygons (through `siaga.geodata`), `labels` names hazards by the lists in force; `csv_export`,
`geojson`, `cap` and `formats` write the exports; `svgmap`, `chart`, `filters`, `display` and
`pages` make the pages; `web` holds the routes Airflow mounts. The pipeline imports nothing
from here, and nothing here writes to the database.
"""
