"""Market data files into a Nautilus ``ParquetDataCatalog``: fast, validated, all or nothing.

Entry point: :func:`tapereader.ingest.pipeline.ingest` (the ``tapereader ingest`` command
wraps it). One module per concept:

- loaders, one per source format: ``binance_feed`` (+ ``binance_book``), ``binance_archive``,
  ``tardis``, ``lean``, ``bars``, ``generic``; ``detect`` picks one from a file's name and
  first bytes;
- ``frames`` (the standard columnar layout loaders produce), ``checks`` (validation, row
  policies, findings), ``options`` (the policies), ``report`` (what was found and done);
- ``nautilus_arrow`` (Arrow tables in Nautilus's catalog layout), ``catalog_writer``
  (staging and the all-or-nothing commit), ``instruments`` (definitions, TOML).
"""
