"""The manifest: the record of one published version of a repo, written last as a push's commit point.

A manifest is a UTF-8 JSON object with sorted keys (schema 4; schema 3 has no "pack", schema 2 no
"signature" nor "sha256", schema 1 no "source_url" either):

    {
      "schema": 4,
      "id": "3f0c9a1b2d4e5f60",          # content id, see content_id()
      "repo": "team-dags",
      "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",   # or null
      "created": "2024-05-01T12:00:00Z",  # UTC
      "objsync_version": "0.1.0",
      "promoted_from": null,              # or {"env", "url", "manifest_id"}
      "source_url": "https://github.com/acme/team-dags",  # the repo's web page, where CI said it
      "signature": {"key_id": "…", "ed25519": "…"},      # or null; see statement()
      "pack": {"etag": "…", "size": 1234, "version_id": null, "max_file": 8388608, "format": "zstd",
               "segments": [[0, 1234, 120]]},             # or null; see objsync.pack
      "files": [                          # sorted by path, paths unique
        {"path": "dags/a.py", "size": 120, "etag": "…", "md5": "…", "sha256": "…", "version_id": null}
      ]
    }

`path` is relative to the repo's folder `<prefix>/<repo>/`. `etag` is the object's ETag without
quotes, `md5` the MD5 of its bytes (they differ for multipart uploads), `version_id` is set when the
bucket is versioned, `sha256` the SHA-256 of its bytes. A manifest is written in the oldest schema that
holds its fields (schema 3 when signed, 4 with a pack), so that older objsync releases still read the others. Reading is strict: an unknown or missing field, a duplicate key, an unsafe path or
a wrong id is an error. Adding a field means a new schema number.
"""

from objsync.manifest.checks import SCHEMA, SCHEMAS, TIME_FORMAT
from objsync.manifest.document import Manifest, commit_url, content_id, now, pack_dict
from objsync.manifest.records import FileEntry, ManifestError, Origin, Signature

__all__ = ["SCHEMA", "SCHEMAS", "TIME_FORMAT", "FileEntry", "Manifest", "ManifestError", "Origin", "Signature",
           "commit_url", "content_id", "now", "pack_dict"]
