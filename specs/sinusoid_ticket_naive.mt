// Meta-ticket, naive: every weight masked (paper Appendix C; reported MSE 3.56 ± 0.11).
// The public code has no configuration for this variant. Read as the paper's usual recipe
// (the Omniglot configs: every bias fixed, only adapted in the inner loop) on the sine
// network, it differs from sinusoid_ticket.mt where the modification lies: the first and
// last layers are masked too, and nothing is meta-learned MAML-style (the public aux_params).
// IteRand, the optimizer and the inner loop are sinusoid_ticket.mt's.
//
// The masked weights are torch's default, not the public init_mode kaiming_normal: that
// gives the one-input first layer a std of 1.41, and with it the 5-step inner loop (lr 0.01)
// diverges (untrained: test MSE 8.7e11, seed 1; meta-training: an infinite query loss at
// iteration 704, seed 1). See docs/results.md.
import "lib/models.mt"

experiment sinusoid_ticket_naive {
  seeds: [1, 2, 3]

  data {
    train: sinusoid(amplitude: [0.1, 5.0], phase: [0, 3.141592653589793], x_range: [-5, 5])
    test: sinusoid(split: "test")
  }

  task { shots: 5, queries: 5 }

  model: sine_mlp(hidden: 40)
  init { "**.bias": torch_default }  // torch's Linear default, as the public sinusoid code

  params { "**.weight": masked, "**.bias": fixed }

  mask {
    weights: torch_default  // see above: kaiming_normal diverges here
    iterand { every: 1000, prob: 1.0 }
  }

  inner { steps: 5, lr: 0.01 }

  outer { optimizer: adamw(lr: 0.001), iterations: 30000, meta_batch: 4 }

  eval { every: 1000, valid_tasks: 200, test_tasks: 1000 }
}
