"""Promote: copy exactly the files of one environment's manifest to another, then write its manifest there."""

from __future__ import annotations

import time
from typing import Sequence

from objsync import __version__
from objsync.manifest import FileEntry, Manifest, ManifestError, Origin, now
from objsync.push.manifests import read_manifest
from objsync.push.plan import PushRules, Transfer, plan_push
from objsync.pack import Pack
from objsync.push.pack import copy_pack
from objsync.push.publish import begin, finish, sign
from objsync.push.target import Report, Target, report
from objsync.push.transfer import copy
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.signing import SigningKey


def promote(src_bucket: Bucket, src: Target, dst_bucket: Bucket, dst: Target, rules: PushRules = PushRules(), *,
            threads: int = 16, dry_run: bool = False, signer: SigningKey | None = None) -> Report:
    """Copy exactly the files of the source manifest to the destination, delete stale ones, write its manifest.

    With `signer` the new manifest is signed with it; without, the source's signature is kept, which
    holds while the copies keep their ETags.
    """
    started = time.monotonic()
    if (src.remote.effective_endpoint(), src.bucket, src.folder) == (dst.remote.effective_endpoint(), dst.bucket, dst.folder):
        return report("promote", dst, started, errors=[(dst.url(dst.folder), f"{src.env} and {dst.env} are the "
                                                        f"same location; promote between two environments")])
    try:
        source = read_manifest(src_bucket, src.manifest_key)
    except ManifestError as exc:
        return report("promote", dst, started, errors=[(src.url(src.manifest_key), f"invalid manifest: {exc}")])
    except Exception as exc:
        return report("promote", dst, started, errors=[(src.url(src.manifest_key), describe_error(exc))])
    if source is None:
        return report("promote", dst, started, errors=[(src.url(src.manifest_key), (
            f"no manifest for repo {src.repo!r} in {src.env}; push it first with `objsync push {src.env}`"))])
    if source.repo != src.repo:
        return report("promote", dst, started, errors=[(src.url(src.manifest_key), (
            f"the manifest names repo {source.repo!r}, not {src.repo!r}; it was copied or altered by hand"))])
    if signer is not None and any(f.sha256 is None for f in source.files):
        return report("promote", dst, started, errors=[(src.url(src.manifest_key), (
            f"version {source.id} in {src.env} was pushed unsigned, without SHA-256s, so it cannot be signed; "
            f"push it to {src.env} with --sign-key first (unchanged files are not uploaded again)"))])
    begun = begin(dst_bucket, dst, "promote", started)
    if isinstance(begun, Report):
        return begun
    listing, previous = begun
    p = plan_push(source.files, listing, dst.folder, previous, rules)
    if p.blocked:
        return report("promote", dst, started, p, errors=[(dst.url(dst.folder), p.blocked)])
    origin = Origin(src.env, str(src.location), source.id)
    server_side = src.remote.effective_endpoint() == dst.remote.effective_endpoint()

    def build(published: Sequence[FileEntry]) -> Manifest:
        m = Manifest(dst.repo, tuple(published), source.commit, now(), __version__, origin,
                     source_url=source.source_url)
        if signer is not None or source.signature is None:
            return sign(m, signer)
        if m.statement() != source.statement():
            raise ValueError(f"the copies in {dst.env} got other ETags than in {src.env}, so {src.env}'s signature "
                             f"does not cover them; promote again with --sign-key to sign for {dst.env}")
        return m.signed(source.signature)

    def transfer(t: Transfer) -> FileEntry:
        return copy(src_bucket, src.folder + t.file.path, dst_bucket, t, server_side)

    def pack_of(m: Manifest) -> Pack:
        return copy_pack(src_bucket, src.pack_key(source.id), source.pack, dst_bucket, dst.pack_key(m.id), server_side)

    return finish("promote", dst_bucket, dst, p, transfer, build, previous, threads, dry_run, started,
                  pack_of if source.pack is not None else None)
