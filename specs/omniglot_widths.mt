// Omniglot MLP width sweep (paper Fig. 3): widths 1/2/4/8 x {5, 20}-way x {1, 5}-shot,
// three seeds, for MAML, Meta-ticket and Meta-ticket with IteRand.
import "omniglot_mlp_maml.mt"
import "omniglot_mlp_ticket.mt"

// IteRand as in the public configs: every 1000 outer steps, re-draw every pruned weight.
experiment omniglot_mlp_ticket_iterand extends omniglot_mlp_ticket {
  mask {
    iterand { every: 1000, prob: 1.0 }
  }
}

sweep omniglot_widths_maml over omniglot_mlp_maml {
  model.width: [1, 2, 4, 8]
  task.ways: [5, 20]
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep omniglot_widths_ticket over omniglot_mlp_ticket {
  model.width: [1, 2, 4, 8]
  task.ways: [5, 20]
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep omniglot_widths_ticket_iterand over omniglot_mlp_ticket_iterand {
  model.width: [1, 2, 4, 8]
  task.ways: [5, 20]
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}
