"""The ffmpeg command of a rendition: encoder settings, the filter graph, the arguments, the tool versions.

One ffmpeg invocation decodes the source, fits it to the 1080x1920 frame, composites the overlay PNGs
(``overlays``) and encodes once; nothing here runs ffmpeg except to ask its version.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass

from advisor_studio.video.probe import ProbeResult, ffmpeg_exe, ffmpeg_input
from advisor_studio.video.render.overlays import OUT_H, OUT_W, SUB_GAP, SUB_H, Overlay


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides the encoded bytes besides the inputs; part of the recipe hash."""

    preset: str = "veryfast"
    crf: int = 21
    maxrate: str = "8M"
    bufsize: str = "16M"
    profile: str = "high"
    fps: int = 30
    gop: int = 60  # one keyframe every 2 s at 30 fps; scene-cut keyframes disabled so it is exact
    width: int = OUT_W
    height: int = OUT_H
    audio_bitrate: str = "128k"
    audio_rate: int = 48000
    audio_channels: int = 2
    # x264 frame threads gave a different byte here and there on a loaded machine (1 run in 6 differed);
    # slice threads gave identical bytes in every run at the same speed and +0.3% size. See video.md.
    sliced_threads: bool = True
    # With slice threads the slice count equals the thread count, and it changes the bytes: pin it so a
    # worker with more cores produces the same file (ffmpeg's own decode/filter threads stay automatic).
    x264_threads: int = 4


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`, recorded in every recipe."""
    out = subprocess.run(
        [ffmpeg_exe(), "-version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
    )
    first = out.stdout.decode("utf-8", "replace").splitlines()[0]
    return first.split(" Copyright")[0].strip()


def tool_versions() -> dict:
    """Versions of the tools that shape the output bytes."""
    import imageio_ffmpeg
    import PIL

    return {
        "ffmpeg": ffmpeg_version(),
        "imageio_ffmpeg": imageio_ffmpeg.__version__,
        "pillow": PIL.__version__,
    }


# ------------------------------------------------------------------------------------------ filter graph


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _geometry_chain(src: ProbeResult, label_in: str, label_out: str, enc: EncoderSettings) -> list[str]:
    """Filters turning the source video into a W x H frame: fit over a blurred copy of itself if not 9:16.

    The blurred background is made at quarter resolution from a 9:16 centre crop, and only the strips
    the picture does not cover are upscaled and stacked around it (vstack/hstack): no full-frame blur,
    no full-frame overlay. Measured on a 30 s 1920x1080 source this costs ~0.8 s over a plain scale,
    against ~3.6 s for "blur the full frame, overlay the picture".
    """
    w, h = enc.width, enc.height
    # No PTS-STARTPTS here: ffmpeg already shifts the whole file to start at 0, and resetting each stream
    # on its own would drop a deliberate offset between audio and video (lip sync).
    pre: list[str] = []
    if src.fps is None or src.fps > enc.fps:
        pre.append(f"fps={enc.fps}")  # drop surplus frames before any per-pixel work
    if src.interlaced:
        pre.append("bwdif=mode=send_frame")  # broadcast/camcorder footage: combing would survive scaling
    if src.rotation_from_tag_only:
        # ffmpeg autorotates only from display-matrix side data; apply a bare "rotate" tag ourselves.
        pre.append({90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}[src.rotation])
    # Frame size in stored pixels after rotation, and the pixel aspect ratio (non-square for some DV/TS).
    pw, ph = src.display_width, src.display_height
    sar = src.sar if src.rotation not in (90, 270) else 1.0 / src.sar
    aspect = pw * sar / ph
    target = w / h
    if aspect >= target:  # wider than 9:16: full width, blurred strips above and below
        fg_w, fg_h = w, _even(w / aspect)
    else:  # narrower than 9:16: full height, blurred strips left and right
        fg_w, fg_h = _even(h * aspect), h
    if (w - fg_w) + (h - fg_h) < 8:  # within a few pixels of 9:16: a negligible stretch beats a blur
        direct = [*pre, f"scale={w}:{h}:flags=bicubic", "setsar=1", "format=yuv420p"]
        return [label_in + ",".join(direct) + label_out]
    bw, bh = w // 4, h // 4
    if aspect >= target:
        crop = f"crop={_even(ph * target / sar)}:{ph}"
    else:
        crop = f"crop={pw}:{_even(pw * sar / target)}"
    chain = [
        label_in + ",".join([*pre, "format=yuv420p", "split=2[g_bg][g_fg]"]),
        f"[g_bg]{crop},scale={bw}:{bh}:flags=fast_bilinear,boxblur=luma_radius=10:luma_power=2,"
        "eq=brightness=-0.08,split=2[g_s1][g_s2]",
        f"[g_fg]scale={fg_w}:{fg_h}:flags=bicubic,setsar=1[g_fgs]",
    ]
    if aspect >= target:
        top = (h - fg_h) // 4 * 2
        bottom = h - fg_h - top
        st, sb = max(2, round(top / 4)), max(2, round(bottom / 4))
        chain += [
            f"[g_s1]crop={bw}:{st}:0:0,scale={w}:{top}:flags=fast_bilinear,setsar=1[g_top]",
            f"[g_s2]crop={bw}:{sb}:0:{bh - sb},scale={w}:{bottom}:flags=fast_bilinear,setsar=1[g_bot]",
            f"[g_top][g_fgs][g_bot]vstack=inputs=3{label_out}",
        ]
    else:
        left = (w - fg_w) // 4 * 2
        right = w - fg_w - left
        sl, sr = max(2, round(left / 4)), max(2, round(right / 4))
        chain += [
            f"[g_s1]crop={sl}:{bh}:0:0,scale={left}:{h}:flags=fast_bilinear,setsar=1[g_left]",
            f"[g_s2]crop={sr}:{bh}:{bw - sr}:0,scale={right}:{h}:flags=fast_bilinear,setsar=1[g_right]",
            f"[g_left][g_fgs][g_right]hstack=inputs=3{label_out}",
        ]
    return chain


@dataclass
class _Plan:
    args: list[str]
    total_s: float
    filter_graph: str


def build_command(
    src: ProbeResult,
    out_file: str,
    enc: EncoderSettings,
    *,
    band: Overlay,
    watermark: Overlay | None,
    card_png: str | None,
    card_s: float,
    subs_list: str | None,
) -> _Plan:
    """Assemble the single ffmpeg invocation (inputs, filter graph, encoder flags)."""
    inputs = ["-i", ffmpeg_input(src.path), "-i", ffmpeg_input(band.path)]
    idx = 2
    wm_idx = card_idx = subs_idx = None
    if watermark:
        inputs += ["-i", ffmpeg_input(watermark.path)]
        wm_idx, idx = idx, idx + 1
    if card_png:
        inputs += ["-i", ffmpeg_input(card_png)]
        card_idx, idx = idx, idx + 1
    if subs_list:
        inputs += ["-f", "concat", "-i", ffmpeg_input(subs_list)]
        subs_idx, idx = idx, idx + 1

    d = src.duration_s
    parts = _geometry_chain(src, f"[0:v:{src.video_stream}]", "[mainv]", enc)
    ar, ch = enc.audio_rate, "stereo" if enc.audio_channels == 2 else "mono"
    if src.has_audio:
        # async=1 fills gaps / trims overlaps so A/V stay in sync; apad+atrim pin the length to the video.
        parts.append(
            f"[0:a:{src.audio_stream}]aresample={ar}:async=1:first_pts=0,"
            f"aformat=sample_fmts=fltp:sample_rates={ar}:channel_layouts={ch},apad,atrim=end={d:.6f}[maina]"
        )
    else:
        parts.append(f"anullsrc=r={ar}:cl={ch},atrim=end={d:.6f}[maina]")
    v, a = "[mainv]", "[maina]"
    if card_idx is not None:
        frames = int(round(card_s * enc.fps))
        parts.append(
            f"[{card_idx}:v]format=yuv420p,setsar=1,loop=loop={frames - 1}:size=1:start=0,"
            f"settb=1/{enc.fps},setpts=N,fps={enc.fps}[cardv]"
        )
        parts.append(f"anullsrc=r={ar}:cl={ch},atrim=end={card_s:.6f}[carda]")
        parts.append(f"[cardv][carda]{v}{a}concat=n=2:v=1:a=1[catv][cata]")
        v, a = "[catv]", "[cata]"
    # Overlays go on after the concat so identity and disclaimer are on the title card too.
    parts.append(f"{v}fps={enc.fps}[cfr]")
    v = "[cfr]"
    parts.append(f"{v}[1:v]overlay={band.x}:{band.y}:format=yuv420[ob]")
    v = "[ob]"
    if wm_idx is not None:
        parts.append(f"{v}[{wm_idx}:v]overlay={watermark.x}:{watermark.y}:format=yuv420[ow]")
        v = "[ow]"
    if subs_idx is not None:
        sub_y = band.y - SUB_GAP - SUB_H
        parts.append(f"{v}[{subs_idx}:v]overlay=0:{sub_y}:format=yuv420:eof_action=pass[os]")
        v = "[os]"
    parts.append(f"{v}format=yuv420p[vout]")
    graph = ";".join(parts)

    x264_params = f"8x8dct=1:threads={enc.x264_threads}"
    if enc.sliced_threads:
        x264_params += ":sliced-threads=1"
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-loglevel", "error"]
    args += [
        "-progress",
        "pipe:1",
        "-nostats",
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[vout]",
        "-map",
        a,
    ]
    args += ["-c:v", "libx264", "-preset", enc.preset, "-profile:v", enc.profile, "-crf", str(enc.crf)]
    args += ["-maxrate", enc.maxrate, "-bufsize", enc.bufsize, "-pix_fmt", "yuv420p"]
    # Fixed GOP, no scene-cut keyframes: a keyframe exactly every 2 s, as the platforms ask.
    args += ["-g", str(enc.gop), "-keyint_min", str(enc.gop), "-sc_threshold", "0"]
    # x264 signals the lowest profile its tools need; the 8x8 transform makes it High even with
    # "ultrafast" (the other presets enable it anyway), as the delivery contract requires.
    args += ["-x264-params", x264_params]
    args += ["-c:a", "aac", "-b:a", enc.audio_bitrate, "-ar", str(ar), "-ac", str(enc.audio_channels)]
    # bitexact + no metadata: no encoder version strings or timestamps in the file, so equal recipes can
    # give equal bytes.
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    args += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
    args += ["-movflags", "+faststart", "-f", "mp4", out_file]
    return _Plan(args, card_s + d, graph)


def build_cover_command(src: ProbeResult, timecode_s: float, out_file: str, *, title_png: str | None) -> list[str]:
    """Assemble the ffmpeg invocation of a cover: the frame at timecode_s fitted like the master, one JPEG."""
    enc = EncoderSettings()
    inputs = ["-ss", f"{timecode_s:.3f}", "-i", ffmpeg_input(src.path)]
    parts = _geometry_chain(src, f"[0:v:{src.video_stream}]", "[main]", enc)
    v = "[main]"
    if title_png:
        inputs += ["-i", ffmpeg_input(title_png)]
        parts.append(f"{v}[1:v]overlay=0:360:format=auto[titled]")
        v = "[titled]"
    # Full-range 4:2:0 is what JPEG viewers expect.
    parts.append(f"{v}scale=out_range=full,format=yuvj420p[cover]")
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-loglevel", "error", *inputs]
    args += ["-filter_complex", ";".join(parts), "-map", "[cover]", "-frames:v", "1", "-q:v", "3"]
    args += ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact"]
    args += ["-f", "image2", "-update", "1", ffmpeg_input(out_file)]
    return args
