"""Video I/O through PyAV (and OpenCV for PNG-frame folders).

One reader for every input the scorer accepts: MP4, WebM, AVI, MKV, MOV, GIF, and a folder of PNG
frames. Frames come back as uint8 RGB [T, H, W, 3] with their presentation times in seconds, so
callers can resample any fps onto the benchmark's time grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from newtonbench.atomic import atomic_path
from newtonbench.errors import InvalidValueError, NewtonBenchError

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".gif")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


class VideoReadError(NewtonBenchError):
    """A video that cannot be opened or decoded."""


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # uint8 [T, H, W, 3], RGB
    times: np.ndarray  # float64 [T], seconds from the first frame
    fps: float  # nominal rate (1 / median frame interval)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 10, codec: str = "libx264") -> None:
    """Write uint8 RGB frames [T, H, W, 3] as H.264 (yuv420p) atomically.

    crf 10 is near-lossless: measured on NewtonBench clips it moves a mask centroid by far less than
    0.1 px. thread_count=1 makes the bitstream independent of the machine's core count, so the same
    seed gives byte-identical files whatever the number of workers.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InvalidValueError(f"frames of shape {frames.shape} and dtype {frames.dtype}; allowed: uint8 [T, H, W, 3]")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise InvalidValueError(f"resolution {w}x{h} is odd; allowed: even width and height (H.264 4:2:0)")
    rate = Fraction(fps).limit_denominator(1000)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        # mbtree=0: with x264's macroblock-tree rate control the same frames encoded to one of
        # several bitstreams from run to run (measured: 2 distinct outputs in 15 encodes of one
        # 64x64 clip, threads=1 or not); without it, 1 in 30. threads=1 for the same reason.
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "stillimage" if t == 1 else "film",
                          "threads": "1", "x264-params": "mbtree=0"}
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path: str | Path, fps_hint: float | None = None, threads: int = 0,
               until: float | None = None, each: Callable[[np.ndarray], np.ndarray] | None = None,
               fps: float | None = None) -> Video:
    """Decode a video file or a folder of frames. Raises VideoReadError on anything unreadable.

    A frame folder has no timing of its own: its frames are taken at `fps_hint` (the benchmark's fps).
    fps: the rate the frames were made at, where the file stores another (a GIF keeps frame delays
    in whole centiseconds, so 16 fps is stored as 16.67; some writers stamp a default rate): frame
    i is then at i / fps, the file's timestamps ignored (and `until` counted on that grid).
    threads: 0 = FFmpeg's automatic threading (decoding and colour conversion); 1 = both in the
    calling thread only, for callers that decode many videos in parallel (measured: ~25-45% less
    CPU per clip, no wait on frame threads).
    until: seconds after the first frame; only the frames before it are read, and decoding stops
    at the first frame at or after it (a scorer needs only the benchmark's span of a longer video).
    While a file's timestamps are missing or out of order it is decoded on, as without `until`:
    its times then come from a uniform grid over every frame.
    each: applied to the frames as they are read, a run of them at a time (uint8 RGB [k, h, w, 3]
    -> [k, H, W, 3]; see `_Frames`): the scorer scales frames onto the benchmark's grid there, so
    a 1080p clip never lies in memory at 1080p all at once.
    """
    path = Path(path)
    if path.is_dir():
        return _read_frame_folder(path, fps or fps_hint, until, each)
    import av
    from av.video.reformatter import VideoReformatter

    frames, times = _Frames(each), []
    # One reformatter for the whole clip: `frame.to_ndarray(format=...)` builds a new swscale
    # context for every frame, which cost more than decoding (measured at 256x256: 10.4 -> 5.5 ms
    # of CPU a 32-frame clip, the same pixels bit for bit).
    to_rgb = VideoReformatter()
    # PyAV >= 17 converts in threads of its own too, automatic by default (older versions have
    # neither the threads nor the argument): `threads` sets them as it sets the decoder's. At
    # 256x256 on 2 cores the automatic ones took 3-4x the CPU and 2.4x the wall time of one thread
    # (the same pixels bit for bit); at 720p they take 26% less wall time.
    convert = {"threads": threads} if int(av.__version__.split(".")[0]) >= 17 else {}
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            if threads:
                stream.codec_context.thread_count = threads
            else:
                stream.thread_type = "AUTO"
            ordered = True  # every timestamp so far present and later than the one before
            for frame in container.decode(stream):
                if fps:
                    t = len(times) / fps
                else:
                    t = float(frame.time) if frame.time is not None else np.nan
                ordered = ordered and (t > times[-1] if times else not np.isnan(t))
                if until is not None and ordered and times and t - times[0] >= until:
                    break
                frames.add(to_rgb.reformat(frame, format="rgb24", **convert).to_ndarray())
                times.append(t)
    except VideoReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:  # corrupt, truncated, not a video
        raise VideoReadError(f"{path}: cannot decode ({e.__class__.__name__}: {e})") from e
    if not times:
        raise VideoReadError(f"{path}: no decodable frames")
    times = np.asarray(times, dtype=np.float64)
    if np.isnan(times).any() or np.any(np.diff(times) <= 0):
        # Missing or non-increasing timestamps (some GIF/AVI muxers): fall back to a uniform grid.
        rate = fps_hint or 1.0
        times = np.arange(len(times)) / rate
    times = times - times[0]
    return Video(frames.array(), times, _nominal_fps(times, fps or fps_hint))


class _Frames:
    """Frames as they are read. With `each`, runs of about `RUN_BYTES` of them are handed to it as
    they fill up ([k, h, w, 3] -> [k, H, W, 3]), so only one run is held as read; a clip that fits
    in one run (32 frames of 256x256) is stacked once, as without `each`. Measured, scoring 80
    clips at 832x480 and at 1080p onto a 256x256 grid on 2 cores: the whole clip at once took
    1.79-1.84 s and 6.8-6.9 s (1,334 MiB at 1080p); runs of 8 MB 1.70-1.73 s and 5.9-6.2 s
    (655 MiB); one frame at a time paid the scaling's per-call cost (10% slower at 832x480).
    """

    RUN_BYTES = 8 << 20

    def __init__(self, each: Callable[[np.ndarray], np.ndarray] | None):
        self.each, self.done, self.run = each, [], []

    def add(self, frame: np.ndarray) -> None:
        self.run.append(frame)
        if self.each is not None and len(self.run) * frame.nbytes >= self.RUN_BYTES:
            self.done.append(self.each(np.stack(self.run)))
            self.run = []

    def array(self) -> np.ndarray:
        if self.each is None:
            return np.stack(self.run)
        if self.run:
            self.done.append(self.each(np.stack(self.run)))
            self.run = []
        return self.done[0] if len(self.done) == 1 else np.concatenate(self.done)


def read_rgb(path: str | Path) -> np.ndarray | None:
    """A still image as uint8 RGB [H, W, 3], or None where it is missing or unreadable (the caller
    names the error). OpenCV >= 4.11 decodes straight to RGB (no BGR image and conversion copy:
    the scorer reads two PNGs a clip); older ones decode BGR and convert."""
    import cv2

    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR if rgb is None else rgb)
    if img is None or rgb is not None:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_frame_folder(folder: Path, fps_hint: float | None, until: float | None = None,
                       each: Callable[[np.ndarray], np.ndarray] | None = None) -> Video:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise VideoReadError(f"{folder}: no {'/'.join(FRAME_SUFFIXES)} frames")
    rate = fps_hint or 1.0
    times = np.arange(len(files)) / rate
    if until is not None:  # the frames before it, as from a file (and at least the first)
        keep = max(1, int((times < until).sum()))
        files, times = files[:keep], times[:keep]
    frames, shape = _Frames(each), None
    for f in files:
        img = read_rgb(f)
        if img is None:
            raise VideoReadError(f"{f}: cannot decode image")
        if shape is not None and img.shape != shape:
            raise VideoReadError(f"{folder}: frames differ in size")
        shape = img.shape
        frames.add(img)
    return Video(frames.array(), times, rate)


def _nominal_fps(times: np.ndarray, fallback: float | None) -> float:
    if len(times) < 2:
        return float(fallback or 1.0)
    return float(1.0 / np.median(np.diff(times)))


def find_videos(folder: str | Path) -> dict[str, Path]:
    """Map file stem -> path for every video file or frame folder directly inside `folder`."""
    out: dict[str, Path] = {}
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith("."):
            continue
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (
            p.is_dir() and any(c.suffix.lower() in FRAME_SUFFIXES for c in p.iterdir())
        ):
            out.setdefault(p.stem if p.is_file() else p.name, p)
    return out
