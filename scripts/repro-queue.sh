#!/usr/bin/env bash
# Runs the reproduction's runs one after another on one CPU thread, each in a fixed folder
# under $RUNS (default runs/repro), so the queue can be stopped and started again: a finished
# run (result.json of the same spec) is skipped, a stopped one resumes from its checkpoint.
#
#   scripts/repro-queue.sh [PHASE...]      phases: baselines sinusoid omniglot crossdomain
#                                          glyphs widths constant (default: all, in this order)
#   ITERS_OMNIGLOT=3000 (the reduced Omniglot budget; 30000 is the paper's)
#   ITERS_CONSTANT=200 (section 4.1.2; 60000 is the paper's)
#   SEEDS="1 2 3" (the seeds of every phase)   WIDTHS="5:1 5:4 20:1 20:4" (Fig. 3's WAYS:WIDTH)
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/repro}
MTDSL=${MTDSL:-.venv/bin/mtdsl}
IO=${ITERS_OMNIGLOT:-3000}
IC=${ITERS_CONSTANT:-200}
SEEDS=${SEEDS:-1 2 3}
export MTDSL_DATA=${MTDSL_DATA:-../shared/data} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# one NAME SPEC SEED [--set ...]: a run in $RUNS/NAME/seedSEED
one() {
  local name=$1 spec=$2 seed=$3; shift 3
  local dir="$RUNS/$name/seed$seed"
  echo "$(date -u +%FT%TZ) start $dir"
  if "$MTDSL" run "$spec" --seed "$seed" --out "$dir" "$@" > "$RUNS/$name.seed$seed.log" 2>&1; then
    echo "$(date -u +%FT%TZ) done  $dir"
  else
    echo "$(date -u +%FT%TZ) FAILED $dir (see $RUNS/$name.seed$seed.log)"
  fi
}

phase_baselines() {  # the untrained networks: 0 iterations, same seeds, same meta-test
  for s in $SEEDS; do
    for e in maml ticket ticket_naive; do
      one "sinusoid_${e}_it0" "specs/sinusoid_$e.mt" $s --set outer.iterations=0
    done
    for e in maml ticket; do
      one "omniglot_5w5s_w1_${e}_it0" "specs/omniglot_mlp_$e.mt" $s --set outer.iterations=0
    done
  done
}

phase_sinusoid() {  # Appendix C at the paper's 30000 iterations
  for s in $SEEDS; do
    for e in ticket maml ticket_naive; do
      one "sinusoid_$e" "specs/sinusoid_$e.mt" $s
    done
  done
  # MAML's seed 2 diverges at iteration 27538 (docs/results.md); its network at the last
  # checkpoint before that, as a run of its own
  one sinusoid_maml_it27000 specs/sinusoid_maml.mt 2 --set outer.iterations=27000
}

omniglot_runs() {  # omniglot_runs WAYS SHOTS WIDTH SEED
  local w=$1 k=$2 f=$3 s=$4 tag="omniglot_${1}w${2}s_w${3}"
  local set=(--set task.ways=$w --set task.shots=$k --set model.width=$f --set outer.iterations=$IO)
  one "${tag}_maml_it$IO" specs/omniglot_mlp_maml.mt $s "${set[@]}"
  one "${tag}_ticket_it$IO" specs/omniglot_mlp_ticket.mt $s "${set[@]}"
  one "${tag}_ticket_iterand_it$IO" specs/omniglot_widths.mt::omniglot_mlp_ticket_iterand $s "${set[@]}"
}

phase_omniglot() {  # 5-way 5-shot, width 1 (section 4.1.1)
  for s in $SEEDS; do omniglot_runs 5 5 1 $s; done
}

phase_widths() {  # Fig. 3: widths 1 and 4, 5-way and 20-way 5-shot, all at the same $IO
  local c
  for s in $SEEDS; do
    for c in ${WIDTHS:-5:1 5:4 20:1 20:4}; do
      omniglot_runs "${c%:*}" 5 "${c#*:}" $s
      [ "$c" = 5:1 ] && continue  # its untrained network is phase_baselines' omniglot_5w5s_w1_maml_it0
      one "omniglot_${c%:*}w5s_w${c#*:}_untrained" specs/omniglot_mlp_maml.mt $s \
        --set task.ways="${c%:*}" --set model.width="${c#*:}" --set outer.iterations=0
    done
  done
}

phase_constant() {  # section 4.1.2: constant weights, Meta-ticket vs random masks
  for s in $SEEDS; do
    one "omniglot_constant_ticket_it$IC" specs/omniglot_constant_init.mt::omniglot_mlp_ticket_constant $s \
      --set outer.iterations=$IC
    one omniglot_constant_random_mask specs/omniglot_constant_init.mt::omniglot_mlp_random_mask $s
    one omniglot_constant_ticket_it0 specs/omniglot_constant_init.mt::omniglot_mlp_ticket_constant $s \
      --set outer.iterations=0
  done
}

phase_crossdomain() {  # 5-way 1-shot models for the font-glyph meta-test (5-shot ones come from phase_omniglot)
  for s in $SEEDS; do
    for e in maml ticket; do
      one "omniglot_5w1s_w1_${e}_it$IO" "specs/omniglot_mlp_$e.mt" $s --set task.shots=1 --set outer.iterations=$IO
      one "omniglot_5w1s_w1_${e}_it0" "specs/omniglot_mlp_$e.mt" $s --set task.shots=1 --set outer.iterations=0
    done
  done
}

phase_glyphs() {  # across domains: untrained and trained 5-way width-1 networks on font glyphs
  local g=${GLYPHS:-runs/glyphs}
  [ -d "$g/classes" ] || .venv/bin/python scripts/make-glyphs.py "$g"
  g=$(cd "$g" && pwd)
  local G="folder(\"$g/classes\", splits: \"$g/splits\", split: \"test\", size: 28, channels: 1)"
  for s in $SEEDS; do
    for k in 1 5; do
      one "glyphs_5w${k}s_w1_untrained" specs/omniglot_mlp_maml.mt $s \
        --set outer.iterations=0 --set task.shots=$k --set "data.test=[$G]"
    done
  done
  for dir in "$RUNS"/omniglot_5w[15]s_w1_{maml,ticket}_it$IO/seed*; do
    [ -f "$dir/result.json" ] || continue
    grep -q '"folder' "$dir/result.json" ||
      "$MTDSL" test "$dir" --on "$G" >> "$RUNS/glyphs-test.log" 2>&1 || echo "not meta-tested: $dir"
  done
}

mkdir -p "$RUNS"
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(baselines sinusoid omniglot crossdomain glyphs widths constant)
for p in "${phases[@]}"; do "phase_$p"; done
echo "$(date -u +%FT%TZ) queue finished"
