"""What the analysis costs on a cache (the README's "cost at 100k" column): each step the page
or precompute runs for the analysis by any column, timed in this process, medians of --repeats.

    python bench/bench_analysis.py --cache cache/synth100k-depths
    python bench/bench_analysis.py --cache /tmp/demo --repeats 5 --rep mfcc --compare z

Steps: the k-NN vote's confusion (one column), one heatmap cell's clips, the Jaccard agreement
of two representations (and its colour groups), trust of one view (precompute, per
representation x view, on a sample of at most 5,000), the filter mask, find, the per-column
summary and the CSV of 1,000 clips, the scores of a filtered subset, the offline report.
"""
from __future__ import annotations

import argparse
import statistics
import time

from dacviz_testkit.bench import BenchRecord


def timed(run, repeats: int) -> tuple[list[float], object]:
    """(seconds of each of ``repeats`` runs, the last run's result)."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return times, result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="a dacviz cache directory")
    parser.add_argument("--rep", default="z", help="the representation on screen (default: z)")
    parser.add_argument("--compare", default="mfcc", help="the one compared with (default: mfcc)")
    parser.add_argument("--column", default="label", help="the scored column (default: label)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step, median (default: 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    from dacviz_app.explore import analysis
    from dacviz_app.cache import open_cache
    from dacviz_app.embedding.spaces import VIEW_NAMES
    from dacviz_app.explore.groups import agreement_groups, filter_columns, groups_key
    from dacviz_app.viewer import page_state
    from dacviz_app.explore.groups import ViewGroups
    from dacviz_app.viewer.report import report_html

    cache = open_cache(args.cache)
    print(f"cache {args.cache}: {cache.n_clips:,} clips, rep {args.rep} vs {args.compare}, "
          f"column {args.column}, medians of {args.repeats}")
    record = BenchRecord("bench_analysis")

    def step(name, run, repeats=args.repeats):
        times, result = timed(run, repeats)
        ms = [1000 * t for t in times]
        print(f"  {name:58s} {statistics.median(ms):10.1f} ms", flush=True)
        record.add(name, ms, "ms")
        return result

    conf = step("confusion of the k-NN vote (one column)", lambda: analysis.confusion(cache, args.rep, args.column))
    name = conf["names"][0]
    step("one heatmap cell's clips", lambda: analysis.confusion_cell(cache, args.rep, args.column, name, name))
    step(f"Jaccard agreement, k={analysis.AGREEMENT_K}, all clips",
         lambda: analysis.agreement(cache, args.rep, args.compare))
    step("agreement colour groups", lambda: agreement_groups(cache, args.rep, args.compare))
    seed = cache.seed
    step(f"trust + continuity of one view (sample {min(cache.n_clips, analysis.TRUST_SAMPLE):,})",
         lambda: analysis.trust_scores(cache.embedding(args.rep), cache.projection(args.rep, "tsne2"), seed),
         repeats=1)
    columns = filter_columns(cache)
    value = str(cache.clips[columns[-1]][0])
    chosen = {columns[-1]: {value}}
    keep = step("filter mask (one value)", lambda: analysis.filter_mask(cache, chosen))
    step("drawn groups under that filter (uncached)",
         lambda: ViewGroups(cache).drawn(groups_key(cache, "label", filters=[f"{columns[-1]}={value}"]).text, "pca2"))
    step("find by speaker", lambda: analysis.find_clips(cache, str(cache.clips["speaker"][0])))
    some = list(range(0, cache.n_clips, max(1, cache.n_clips // 1000)))[:1000]
    step("per-column summary of 1,000 clips", lambda: analysis.selection_summary(cache, some, columns))
    step("CSV of 1,000 clips", lambda: analysis.export_csv(cache, some, args.rep, some[0], VIEW_NAMES))
    step(f"scores of the filtered clips (at most {analysis.SUBSET_SAMPLE:,})",
         lambda: analysis.subset_metrics(cache, args.rep, args.column, keep, VIEW_NAMES), repeats=1)
    groups = ViewGroups(cache)
    figures = page_state.figures_update(cache, {v: groups.drawn("label", v) for v in VIEW_NAMES}, args.rep,
                                       False, set(), False)
    highlight = page_state.highlight_update(cache, groups.all("label"), args.rep,
                                           {"clip": 0, "cursor": -1, "play": 0, "nonce": 1}, 10, [], set(), False)
    text = step("offline HTML report", lambda: report_html(
        cache, args.rep, figures, highlight, page_state.column_rows(cache, args.rep, "label"), "label",
        groups.all("label")), repeats=1)
    size_mb = len(text.encode()) / 1e6
    print(f"  report size {size_mb:.1f} MB")
    record.add("report size", size_mb, "MB")
    record.save()


if __name__ == "__main__":
    main()
