// Meta-ticket, modified: only the 40x40 hidden weight is masked; the input and output
// layers are meta-learned MAML-style (paper Appendix C; reported MSE 0.596 ± 0.173)
import "lib/models.mt"

experiment sinusoid_ticket {
  seeds: [1, 2, 3]

  data {
    train: sinusoid(amplitude: [0.1, 5.0], phase: [0, 3.141592653589793], x_range: [-5, 5])
    test: sinusoid(split: "test")
  }

  task { shots: 5, queries: 5 }

  model: sine_mlp(hidden: 40)
  init { "**": torch_default }  // torch's Linear default, as the paper's sinusoid code uses

  params {
    "layer2.weight": masked
    "layer1.**", "head.**": meta
    "layer2.bias": fixed
  }

  inner { steps: 5, lr: 0.01 }

  outer { optimizer: adamw(lr: 0.001), iterations: 70000, meta_batch: 25 }

  eval { every: 5000, valid_tasks: 100, test_tasks: 1000 }
}
