// The Omniglot runs of `make reproduce-cpu` (docs/results.md): paper section 4.1.1
// (5-way 5-shot, width 1), the width question of Fig. 3 (widths 1 and 4, 5-way and 20-way
// 5-shot) and the 5-way 1-shot models meta-tested across domains, each at the paper's
// 30000 iterations and beside its untrained network (0 iterations, same seed).
import "omniglot_widths.mt"

sweep repro_maml over omniglot_mlp_maml {
  model.width: [1, 4]
  task.ways: [5, 20]
  seeds: [1, 2, 3]
}

sweep repro_ticket over omniglot_mlp_ticket {
  model.width: [1, 4]
  task.ways: [5, 20]
  seeds: [1, 2, 3]
}

sweep repro_ticket_iterand over omniglot_mlp_ticket_iterand {
  model.width: [1, 4]
  task.ways: [5, 20]
  seeds: [1, 2, 3]
}

// 5-way 1-shot, width 1: the models meta-tested on the font glyphs
sweep repro_1shot_maml over omniglot_mlp_maml {
  task.shots: [1]
  seeds: [1, 2, 3]
}

sweep repro_1shot_ticket over omniglot_mlp_ticket {
  task.shots: [1]
  seeds: [1, 2, 3]
}

// The untrained networks: at 0 iterations MAML's and Meta-ticket's are the same network
// (kaiming_normal weights, a dense mask), so one sweep serves both.
sweep repro_untrained over omniglot_mlp_maml {
  outer.iterations: [0]
  model.width: [1, 4]
  task.ways: [5, 20]
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}
