"""Benchmarks of the video layer: pipeline overhead vs a hand-written ffmpeg command, presets, probing,
subtitles, covers, moviepy, and the peak memory of a long render. Prints figures only.

    .venv/bin/python benchmarks/bench_render.py --quick      # ~5 min on 2 cores
    .venv/bin/python benchmarks/bench_render.py              # full: 30 s sources, 10-minute memory run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from advisor_studio.video import render as R  # noqa: E402
from advisor_studio.video.probe import ffmpeg_exe, probe  # noqa: E402
from advisor_studio.video.render import overlays  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
NAME, SAC = "张三", "S1234567890123"


def ff(*args: str, timeout: float = 3600) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True, timeout=timeout
    )


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = fn(*args, **kwargs)
    return time.perf_counter() - t0, res


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its reaped children (ffmpeg)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """(wall s, CPU s, result); CPU time barely moves when other jobs compete for the cores."""
    c0 = _cpu_s()
    wall, res = timed(fn, *args, **kwargs)
    return wall, _cpu_s() - c0, res


def source(size: str, dur: int) -> str:
    """A cached testsrc2 + sine source; long ones are stream-copied repeats of a 30 s piece (fast)."""
    os.makedirs(os.path.join(OUT, "src"), exist_ok=True)
    path = os.path.join(OUT, "src", f"src_{size}_{dur}s.mp4")
    if os.path.exists(path):
        return path
    piece = min(dur, 30)
    piece_path = os.path.join(OUT, "src", f"src_{size}_{piece}s.mp4")
    if not os.path.exists(piece_path):
        ff(
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={size}:r=30:d={piece}",
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:d={piece}:r=48000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-shortest",
            piece_path,
        )
    if piece == dur:
        return piece_path
    lst = path + ".txt"
    with open(lst, "w") as fh:
        fh.writelines(f"file '{os.path.basename(piece_path)}'\n" for _ in range(dur // piece))
    ff("-f", "concat", "-i", lst, "-c", "copy", path)
    os.unlink(lst)
    return path


def options(**kw) -> R.RenderOptions:
    return R.RenderOptions(advisor_name=NAME, sac_number=SAC, **kw)


# A hand-written command per source shape: the same overlays (pre-rendered PNGs) and encoder flags the
# pipeline uses, typed out the way an engineer would on a shell, without probing, hashing or progress.
HAND_GEOMETRY = {
    "1080x1920": "[0:v]scale=1080:1920,setsar=1,format=yuv420p[m]",
    "720x1280": "[0:v]scale=1080:1920:flags=bicubic,setsar=1,format=yuv420p[m]",
    "1920x1080": (
        "[0:v]format=yuv420p,split[a][b];"
        "[a]crop=608:1080,scale=270:480:flags=fast_bilinear,boxblur=10:2,eq=brightness=-0.08,split[s1][s2];"
        "[s1]crop=270:164:0:0,scale=1080:656:flags=fast_bilinear[t];"
        "[s2]crop=270:164:0:316,scale=1080:656:flags=fast_bilinear[u];"
        "[b]scale=1080:608:flags=bicubic[fg];[t][fg][u]vstack=3[m]"
    ),
}


def hand_written(src: str, size: str, out: str, band, wm, preset: str = "veryfast") -> None:
    graph = (
        HAND_GEOMETRY[size]
        + f";[m][1:v]overlay=0:{band.y}[o1];[o1][2:v]overlay={wm.x}:{wm.y},format=yuv420p[v];"
        "[0:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a]"
    )
    encode = (
        f"-c:v libx264 -preset {preset} -profile:v high -crf 21 -maxrate 8M -bufsize 16M -pix_fmt yuv420p "
        "-g 60 -keyint_min 60 -sc_threshold 0 -x264-params 8x8dct=1:threads=4:sliced-threads=1 "
        "-c:a aac -b:a 128k -ar 48000 -ac 2 -movflags +faststart"
    )
    # Benchmark paths contain no spaces, so a plain split is a faithful "shell" command line.
    ff(
        *f"-i {src} -i {band.path} -i {wm.path} -filter_complex".split(),
        graph,
        *"-map [v] -map [a]".split(),
        *encode.split(),
        out,
    )


def bench_ratio(dur: int, reps: int, work: str) -> None:
    print(f"\n## pipeline render vs hand-written ffmpeg ({dur} s sources, preset veryfast, best of {reps})")
    font = R.default_font_path()
    band = R.make_band_overlay(NAME, SAC, R.DEFAULT_DISCLAIMER, font, os.path.join(work, "band.png"))
    wm = R.make_watermark_overlay(R.DEFAULT_FIRM_WATERMARK, font, os.path.join(work, "wm.png"))
    print("| source | hand wall s | pipeline wall s | wall ratio | hand CPU s | pipeline CPU s | CPU ratio |"
          " realtime x | MB | identical bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in ("1080x1920", "1920x1080", "720x1280"):
        src = source(size, dur)
        hand, pipe, hand_cpu, pipe_cpu, shas = [], [], [], [], set()
        for _ in range(reps):  # alternate so drifting machine load hits both equally
            t, c, _ = cpu_timed(hand_written, src, size, os.path.join(work, "hand.mp4"), band, wm)
            hand.append(t)
            hand_cpu.append(c)
            t, c, res = cpu_timed(R.render, src, os.path.join(work, "pipe.mp4"), options())
            pipe.append(t)
            pipe_cpu.append(c)
            shas.add(res.sha256)
        h, p, hc, pc = min(hand), min(pipe), min(hand_cpu), min(pipe_cpu)
        same = "yes" if len(shas) == 1 else "NO"
        print(f"| {size} | {h:.2f} | {p:.2f} | {p / h:.3f} | {hc:.2f} | {pc:.2f} | {pc / hc:.3f} | "
              f"{dur / p:.2f} | {res.size_bytes / 1e6:.1f} | {same} ({reps} runs) |")
    print(f"- load average while measuring: {os.getloadavg()[0]:.1f}")


def bench_presets(dur: int, work: str) -> None:
    print(f"\n## x264 preset (1920x1080 source, {dur} s, pipeline render)")
    print("| preset | seconds | realtime x | MB | kbit/s |")
    print("|---|---|---|---|---|")
    src = source("1920x1080", dur)
    for preset in ("ultrafast", "superfast", "veryfast", "faster", "fast"):
        t, res = timed(
            R.render, src, os.path.join(work, "p.mp4"), options(encoder=R.EncoderSettings(preset=preset))
        )
        print(
            f"| {preset} | {t:.2f} | {dur / t:.2f} | {res.size_bytes / 1e6:.1f} | "
            f"{res.size_bytes * 8 / 1000 / res.duration_s:.0f} |"
        )


def bench_probe(paths: list[str]) -> None:
    print("\n## probe cost by decode check mode (seconds)")
    print("| source | size MB | none | tail | full |")
    print("|---|---|---|---|---|")
    for path in paths:
        row = []
        for mode in ("none", "tail", "full"):
            t, res = timed(probe, path, decode_check_mode=mode, max_duration_s=10_000)
            row.append(t)
        print(
            f"| {os.path.basename(path)} ({res.duration_s:.0f} s) | {os.path.getsize(path) / 1e6:.0f} | "
            + " | ".join(f"{t:.2f}" for t in row)
            + " |"
        )


def _srt(n: int, dur: float) -> str:
    step = dur / n
    out = []
    for i in range(n):
        a, b = i * step, i * step + step * 0.9

        def tc(x: float) -> str:
            ms = int(round(x * 1000))
            return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

        out.append(f"{i + 1}\n{tc(a)} --> {tc(b)}\n第{i + 1}句：今天我们聊一聊资产配置与风险控制\n")
    return "\n".join(out)


def bench_subtitles(dur: int, work: str) -> None:
    from advisor_studio.video.srt import parse_srt, timeline_segments

    print("\n## subtitles")
    font = R.default_font_path()
    text = _srt(2500, 5000.0)
    t_parse, cues = timed(parse_srt, text)
    segs = timeline_segments(cues)
    sub_dir = tempfile.mkdtemp(dir=work)
    t_png, _ = timed(R.write_subtitle_track, segs, 0.0, 5000.0, font, sub_dir)
    print(
        f"- parse 2,500 cues (10,000 lines): {t_parse * 1000:.0f} ms; render 2,500 cue PNGs + ffconcat: "
        f"{t_png:.2f} s ({t_png / 2500 * 1000:.1f} ms/cue)"
    )
    src = source("1920x1080", dur)
    print(f"| cues on a {dur} s 1920x1080 source | pipeline render wall / CPU s |")
    print("|---|---|")
    for n in (0, dur, dur * 10):
        srt = os.path.join(work, f"s{n}.srt")
        with open(srt, "w", encoding="utf-8") as fh:
            fh.write(_srt(n, dur) if n else "")
        opts = options(subtitles_path=srt) if n else options()
        t, c, _ = cpu_timed(R.render, src, os.path.join(work, "s.mp4"), opts)
        print(f"| {n} | {t:.2f} / {c:.2f} |")
    # Both subtitle methods as hand-written commands with the same base (geometry + band) and encoder:
    # (a) our PNG track: one concat-demuxer input, one overlay; (b) one PNG input + one overlay per cue.
    band = R.make_band_overlay(NAME, SAC, R.DEFAULT_DISCLAIMER, font, os.path.join(work, "band.png"))
    sub_y = band.y - R.SUB_GAP - R.SUB_H
    encode = "-map [v] -map 0:a -c:v libx264 -preset veryfast -crf 21 -c:a aac".split()
    print(f"\n| cues, {dur} s 1920x1080 source, hand-written, same base | PNG track wall / CPU s |"
          " overlay per cue wall / CPU s |")
    print("|---|---|---|")
    for n in (dur, dur * 10, dur * 30):
        cues = parse_srt(_srt(n, dur))
        track_dir = tempfile.mkdtemp(dir=work)
        lst = R.write_subtitle_track(timeline_segments(cues), 0.0, float(dur), font, track_dir)
        graph = f"{HAND_GEOMETRY['1920x1080']};[m][1:v]overlay=0:{band.y}[b];[b][2:v]overlay=0:{sub_y}[v]"
        args = ["-i", src, "-i", band.path, "-f", "concat", "-i", lst, "-filter_complex", graph]
        t_track, c_track, _ = cpu_timed(ff, *args, *encode, os.path.join(work, "track.mp4"))
        inputs, chain, v = [], [], "[b]"
        for i, c in enumerate(cues):
            png = os.path.join(work, f"cue{i}.png")
            overlays._subtitle_image(tuple(c.text.split("\n")), font).save(png, compress_level=1)
            inputs += ["-i", png]
            between = f"between(t,{c.start_s:.3f},{c.end_s:.3f})"
            chain.append(f"{v}[{i + 2}:v]overlay=0:{sub_y}:enable='{between}'[c{i}]")
            v = f"[c{i}]"
        base = f"{HAND_GEOMETRY['1920x1080']};[m][1:v]overlay=0:{band.y}[b];"
        graph = base + ";".join(chain) + f";{v}null[v]"
        args = ["-i", src, "-i", band.path, *inputs, "-filter_complex", graph]
        t_each, c_each, _ = cpu_timed(ff, *args, *encode, os.path.join(work, "each.mp4"))
        print(f"| {n} | {t_track:.2f} / {c_track:.2f} | {t_each:.2f} / {c_each:.2f} |")


def bench_cover(work: str, dur: int) -> None:
    print("\n## cover extraction (1080x1920 JPEG with title)")
    for size in ("1080x1920", "1920x1080", "720x1280"):
        src = source(size, dur)
        t, res = timed(R.extract_cover, src, dur / 2, "三分钟看懂资产配置", os.path.join(work, "c.jpg"))
        print(f"- {size} @ {dur / 2:.0f} s: {t * 1000:.0f} ms, {res.size_bytes / 1000:.0f} kB")


def bench_moviepy(work: str) -> None:
    print("\n## moviepy CompositeVideoClip vs pipeline (5 s 1920x1080 clip, veryfast)")
    try:
        from moviepy import ColorClip, CompositeVideoClip, ImageClip, VideoFileClip
    except ImportError as exc:  # pragma: no cover - optional
        print(f"- moviepy unavailable: {exc}")
        return
    src = source("1920x1080", 5)
    font = R.default_font_path()
    band = R.make_band_overlay(NAME, SAC, R.DEFAULT_DISCLAIMER, font, os.path.join(work, "band.png"))

    def with_moviepy() -> None:
        clip = VideoFileClip(src)
        fg = clip.resized(width=1080).with_position(("center", "center"))
        bg = ColorClip((1080, 1920), color=(0, 0, 0), duration=clip.duration)
        ov = ImageClip(band.path).with_duration(clip.duration).with_position((0, band.y))
        comp = CompositeVideoClip([bg, fg, ov], size=(1080, 1920))
        comp.write_videofile(
            os.path.join(work, "mp.mp4"),
            fps=30,
            codec="libx264",
            audio_codec="aac",
            preset="veryfast",
            logger=None,
            temp_audiofile_path=work,
        )
        clip.close()

    t_mp, _ = timed(with_moviepy)
    t_pipe, _ = timed(R.render, src, os.path.join(work, "pp.mp4"), options())
    print(f"- moviepy (plain black background, no blur, per-frame numpy compositing): {t_mp:.2f} s")
    print(
        f"- pipeline (blurred background, band, watermark, probe + hashes): {t_pipe:.2f} s "
        f"-> moviepy / pipeline = {t_mp / t_pipe:.1f}x"
    )


def mem_child(src: str, out: str) -> None:
    """Runs in a fresh interpreter so RUSAGE_CHILDREN covers exactly this render's ffmpeg processes."""
    t, res = timed(R.render, src, out, options())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/self/status") as fh:  # VmHWM: this interpreter's own high-water mark
        hwm_kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "seconds": t,
                "ffmpeg_peak_rss_kb": usage.ru_maxrss,
                "python_peak_rss_kb": hwm_kb,
                "duration_s": res.duration_s,
                "size_bytes": res.size_bytes,
            }
        )
    )


def bench_memory(dur: int, work: str) -> None:
    print(f"\n## peak memory of one render ({dur} s 1920x1080 source, veryfast)")
    src = source("1920x1080", dur)
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_memchild", src, os.path.join(work, "mem.mp4")],
        capture_output=True,
        text=True,
        check=True,
        timeout=7200,
    )
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"- render {m['seconds']:.1f} s ({dur / m['seconds']:.2f}x realtime), output "
        f"{m['size_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"- ffmpeg peak RSS {m['ffmpeg_peak_rss_kb'] / 1024:.0f} MB (largest child, RUSAGE_CHILDREN); "
        f"python peak RSS {m['python_peak_rss_kb'] / 1024:.0f} MB (VmHWM)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 s sources and a 60 s memory run")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the ratio runs (best is kept)")
    ap.add_argument("--only", default="", help="comma list: ratio,presets,probe,subs,cover,moviepy,memory")
    ap.add_argument("--_memchild", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._memchild:
        mem_child(*a._memchild)
        return
    dur = 10 if a.quick else 30
    only = set(filter(None, a.only.split(",")))

    def want(name: str) -> bool:
        return not only or name in only

    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-", dir=OUT)
    print(f"# bench_render ({'quick' if a.quick else 'full'}), {os.cpu_count()} CPUs, {R.ffmpeg_version()}")
    if want("ratio"):
        bench_ratio(dur, a.reps, work)
    if want("presets"):
        bench_presets(10, work)
    if want("probe"):
        bench_probe([source("1920x1080", dur), source("1920x1080", 60 if a.quick else 600)])
    if want("subs"):
        bench_subtitles(10, work)
    if want("cover"):
        bench_cover(work, dur)
    if want("moviepy"):
        bench_moviepy(work)
    if want("memory") and not a.skip_memory:
        bench_memory(60 if a.quick else 600, work)
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
