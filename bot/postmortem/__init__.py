"""The post-mortem written when an incident ends (resolved by itself or by hand).

- png.py — a small PNG writer and raster canvas (pure, zlib only);
- chart.py — connections over the incident, stacked by holder, as a PNG (pure);
- summary.py — the post-mortem itself: timeline, cause, budget before/after, prevention, and
  its Markdown (pure);
- writer.py — the I/O: hung on AlertEngine's one "incident ended" path; reads what was recorded
  (bot/state/postmortems.py), posts the summary in the thread and uploads the chart and the
  Markdown with Slack's file flow; `latest_postmortem` for `/pgconn APP postmortem`.
"""
