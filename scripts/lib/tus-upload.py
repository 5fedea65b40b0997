#!/usr/bin/env python3
"""Uploads one file to a FrameFlow coordinator with PyPI's tuspy (an independent tus client).

Used by the interop tests (Tests/IntegrationTests/TusInteropTests.swift). The upload URL is
kept in a tuspy URL store keyed by the file's fingerprint, so running the script again on the
same file resumes from the server's offset, as a user re-running an interrupted upload would.

Prints one JSON object per line: {"event": "start", "offset": N, "url": U} once the upload
exists (N > 0 when it resumed), {"event": "chunk", "offset": N} after each acknowledged chunk,
then {"event": "done", "videoId": ID} or {"event": "error", "status": S, "body": B} (exit 1).
"""
import argparse
import json
import sys
import time

from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage import filestorage


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="creation URL, e.g. http://127.0.0.1:8080/uploads")
    parser.add_argument("--token", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--store", required=True, help="tuspy URL store (JSON file)")
    parser.add_argument("--chunk-size", type=int, default=1 << 20)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to wait after each chunk")
    parser.add_argument("--checksum", action="store_true", help="send Upload-Checksum (sha1) with each chunk")
    parser.add_argument("--meta", action="append", default=[], help="metadata KEY=VALUE")
    args = parser.parse_args()

    metadata = {}
    for item in args.meta:
        key, _, value = item.partition("=")
        metadata[key] = value
    client = tus_client.TusClient(args.endpoint, headers={"Authorization": "Bearer " + args.token})
    try:
        uploader = client.uploader(
            file_path=args.file, chunk_size=args.chunk_size, metadata=metadata, store_url=True,
            url_storage=filestorage.FileStorage(args.store), upload_checksum=args.checksum)
        if not uploader.url:
            uploader.set_url(uploader.create_url())
            uploader.offset = 0
        say(event="start", offset=uploader.offset, url=uploader.url)
        video_id = None
        if uploader.offset >= uploader.stop_at:
            # Already complete on the server (the last 204 was lost): HEAD names the video.
            video_id = head_video_id(uploader)
        while uploader.offset < uploader.stop_at:
            uploader.upload_chunk()
            say(event="chunk", offset=uploader.offset)
            video_id = uploader.request.response_headers.get("frameflow-video-id") or video_id
            if args.pause:
                time.sleep(args.pause)
        say(event="done", videoId=video_id)
    except (TusUploadFailed, TusCommunicationError) as error:
        body = error.response_content.decode("utf-8", "replace") if error.response_content else str(error)
        say(event="error", status=error.status_code, body=body)
        sys.exit(1)


def head_video_id(uploader):
    import requests
    response = requests.head(uploader.url, headers=uploader.get_headers())
    return response.headers.get("frameflow-video-id")


if __name__ == "__main__":
    main()
