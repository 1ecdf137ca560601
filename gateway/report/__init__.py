"""The readiness report: "will my app work on R2?". In audit and enforce mode every request's
findings (what R2 would refuse, or do differently) are kept as rows by client key, user agent,
bucket and operation (``findings``), found by the rules and by the observers of ``detect``,
explained from the profile and ``hints.yaml`` (``catalog``), served as ``/report`` (HTML) and
``/report.json`` beside ``/metrics`` (``endpoint``), kept across restarts (``live``), and built the
same way from access logs by ``r2-gateway report --from`` (``offline``)."""
