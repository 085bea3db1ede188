#!/usr/bin/env bash
# Every run of docs/results.md at the paper's schedules, through `mtdsl run`'s sweeps, JOBS
# runs at a time. It takes days on 2 CPU cores (docs/results.md lists each run's wall time);
# every run has a fixed folder under OUT, so running this again skips finished runs and
# resumes stopped ones from their checkpoints.
#
#   make reproduce-cpu [JOBS=2] [OUT=runs/reproduce] [GLYPHS=runs/glyphs]
set -eu
cd "$(dirname "$0")/.."
MTDSL=${MTDSL:-.venv/bin/mtdsl}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/reproduce}
GLYPHS=${GLYPHS:-runs/glyphs}
export MTDSL_DATA=${MTDSL_DATA:-../shared/data}

run() { "$MTDSL" run "$@" --jobs "$JOBS"; }

# Sinusoid regression, Appendix C: 30000 iterations, and the untrained networks
for e in maml ticket_naive ticket; do
  run "specs/sinusoid_$e.mt" --out "$OUT/sinusoid_$e"
  run "specs/sinusoid_$e.mt" --out "$OUT/sinusoid_${e}_untrained" --set outer.iterations=0
done

# Omniglot, section 4.1.1 and Fig. 3 (widths 1 and 4, 5-way and 20-way 5-shot), 1-shot
# models for the cross-domain test, and the untrained networks
for s in repro_maml repro_ticket repro_ticket_iterand repro_1shot_maml repro_1shot_ticket repro_untrained; do
  run "specs/omniglot_reproduce.mt::$s" --out "$OUT/$s"
done

# Section 4.1.2: constant weights, Meta-ticket (60000 iterations) and random 50% masks
for e in omniglot_mlp_ticket_constant omniglot_mlp_random_mask; do
  run "specs/omniglot_constant_init.mt::$e" --out "$OUT/$e"
done

# Cross-domain: the 5-way width-1 models meta-tested on glyphs rendered from fonts
[ -d "$GLYPHS/classes" ] || .venv/bin/python scripts/make-glyphs.py "$GLYPHS"
G="folder(\"$(cd "$GLYPHS" && pwd)/classes\", splits: \"$(cd "$GLYPHS" && pwd)/splits\", split: \"test\", size: 28, channels: 1)"
for dir in "$OUT"/repro_maml/model.width=1,task.ways=5,seed=* "$OUT"/repro_ticket/model.width=1,task.ways=5,seed=* \
           "$OUT"/repro_1shot_*/*seed=* "$OUT"/repro_untrained/*model.width=1,task.ways=5,*; do
  [ -f "$dir/result.json" ] || continue
  grep -q '"folder' "$dir/result.json" || "$MTDSL" test "$dir" --on "$G" || echo "not meta-tested: $dir"
done
