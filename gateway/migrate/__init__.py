"""``r2-gateway migrate``: the bulk copy of a bucket (or a prefix, or listed keys) from one configured
store to another — R2's Super Slurper, on the stores the gateway's config already names.

Modules: :mod:`.stores` (the S3 calls, on the gateway's own upstream client) · :mod:`.listing` (both
sides' keys, merged in order) · :mod:`.plan` (what to do with a key; shards) · :mod:`.copy` (one
object, streamed; multipart in parallel) · :mod:`.bodies` (the source body as the PUT's: whole,
streamed, spliced, in parts) · :mod:`.verify` (what an ETag proves; in-flight digests) ·
:mod:`.engine` (the run) · :mod:`.report`, :mod:`.progress`, :mod:`.metrics` (what it tells) ·
:mod:`.command` (the CLI's entry). The reference page is docs/migration.md.
"""
