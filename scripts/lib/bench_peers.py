#!/usr/bin/env python3
"""The ways people extract frames in Python, for scripts/bench.

    bench_peers.py METHOD INPUT RATE FORMAT QUALITY OUT.zip

METHOD is one of pyav-decode, pyav-seek, decord, opencv-grab, opencv-seek. Each writes the
frames `ffmpeg -vf fps=RATE` would output (the last frame whose slot round(t * RATE) is <= k, for
sample k = 0, 1, ...; the end from the last frame's end time) as frame_0001.EXT... into a stored
ZIP, the way the library's documentation shows it: PyAV decoding every frame or seeking
(container.seek) per sample, decord's VideoReader.get_batch, OpenCV's VideoCapture with
grab()/retrieve() or CAP_PROP_POS_FRAMES per sample. All of them encode with OpenCV's
cv2.imencode (libpng at OpenCV's default level, libjpeg-turbo at a quality giving
files of about ffmpeg's -q:v size), so the methods differ in how they decode, not in the image encoder.
Prints "decoded=N" (frames the method decoded, where it can tell) on stdout.
"""
import math
import sys
import zipfile
from fractions import Fraction


def slot(t, rate):
    """round(t * rate), halves away from zero (the fps filter's rounding)."""
    x = t * rate
    return int(math.floor(x + Fraction(1, 2))) if x >= 0 else -int(math.floor(-x + Fraction(1, 2)))


def jpeg_quality(q):
    # ffmpeg's -q:v 2..31 (lower is better) onto libjpeg's quality: -q:v 2 -> 90, whose files
    # come out about 1.1x the size of ffmpeg's mjpeg at -q:v 2 on 1080p footage (95 gave 1.8x).
    return max(5, min(100, 100 - int(q) * 5))


class Writer:
    def __init__(self, path, fmt, quality):
        import cv2
        self.cv2 = cv2
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
        self.ext = "jpg" if fmt in ("jpg", "jpeg") else "png"
        self.params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(quality)] if self.ext == "jpg" else []
        self.count = 0

    def add(self, bgr):
        ok, data = self.cv2.imencode("." + self.ext, bgr, self.params)
        if not ok:
            raise RuntimeError("imencode failed")
        self.count += 1
        self.zip.writestr("frame_%04d.%s" % (self.count, self.ext), data.tobytes())

    def close(self):
        self.zip.close()


def cfr_plan(frame_count, fps, rate):
    """For a constant-rate file: the frame index each sample shows, and the sample count."""
    slots = [slot(Fraction(i) / fps, rate) for i in range(frame_count + 1)]
    end = slot(Fraction(frame_count) / fps, rate)
    picks = []
    i = 0
    for k in range(slots[0], end):
        while i + 1 < frame_count and slots[i + 1] <= k:
            i += 1
        picks.append(i)
    return picks


def pyav_decode(path, rate, out):
    import av
    decoded = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = Fraction(container.start_time or 0, 1_000_000)
        held, k, last = None, None, None

        def show(frame, times):
            picture = frame.to_ndarray(format="bgr24")  # converted only when shown
            for _ in range(times):
                out.add(picture)

        for frame in container.decode(stream):
            decoded += 1
            t = Fraction(frame.pts) * stream.time_base - start
            s = slot(t, rate)
            if k is None:
                k = s
            if held is not None and k < s:
                show(held, s - k)
                k = s
            held, last = frame, t
        if held is not None:
            end = slot(last + 1 / Fraction(stream.average_rate), rate)
            if k < end:
                show(held, end - k)
    return decoded


def pyav_seek(path, rate, out):
    import av
    decoded = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = Fraction(stream.average_rate)
        frames = stream.frames or int(float(stream.duration * stream.time_base) * fps)
        picks = cfr_plan(frames, fps, rate)
        tb = stream.time_base
        for index in picks:
            target = Fraction(index) / fps
            # Seek to the keyframe at or before the target, decode forward to it. A seek can land
            # past the target (HEVC: the keyframe's leading pictures come first, or the index is
            # coarse); then seek a second earlier and try again.
            chosen, back = None, 0
            while chosen is None:
                position = max(Fraction(0), target - back)
                container.seek(int(position / tb) + (stream.start_time or 0), stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    decoded += 1
                    if frame.time is not None and frame.time > float(target) + 0.5 / float(fps):
                        break
                    chosen = frame
                if chosen is None and position == 0:
                    raise RuntimeError("no frame at or before %s s" % float(target))
                back += 1
            out.add(chosen.to_ndarray(format="bgr24"))
    return decoded


def decord_batch(path, rate, out):
    import decord
    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    fps = Fraction(reader.get_avg_fps()).limit_denominator(1001)
    picks = cfr_plan(len(reader), fps, rate)
    for i in range(0, len(picks), 8):  # batches bound the memory (a 4K RGB frame is 25 MB)
        batch = reader.get_batch(picks[i:i + 8]).asnumpy()
        for rgb in batch:
            out.add(rgb[:, :, ::-1])
    return None


def opencv_grab(path, rate, out):
    import cv2
    cap = cv2.VideoCapture(path)
    fps = Fraction(cap.get(cv2.CAP_PROP_FPS)).limit_denominator(1001)
    picks = cfr_plan(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), fps, rate)
    index, decoded = -1, 0
    for want in picks:
        while index < want:
            if not cap.grab():
                raise RuntimeError("grab failed at frame %d" % (index + 1))
            index += 1
            decoded += 1
        ok, bgr = cap.retrieve()
        out.add(bgr)
    return decoded


def opencv_seek(path, rate, out):
    import cv2
    cap = cv2.VideoCapture(path)
    fps = Fraction(cap.get(cv2.CAP_PROP_FPS)).limit_denominator(1001)
    picks = cfr_plan(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), fps, rate)
    for want in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, want)
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError("read failed at frame %d" % want)
        out.add(bgr)
    return None


METHODS = {
    "pyav-decode": pyav_decode,
    "pyav-seek": pyav_seek,
    "decord": decord_batch,
    "opencv-grab": opencv_grab,
    "opencv-seek": opencv_seek,
}


def main():
    method, path, rate, fmt, quality, zip_path = sys.argv[1:7]
    out = Writer(zip_path, fmt, quality)
    decoded = METHODS[method](path, Fraction(rate), out)
    out.close()
    if decoded:
        print("decoded=%d" % decoded)


if __name__ == "__main__":
    main()
