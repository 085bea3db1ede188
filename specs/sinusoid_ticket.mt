// Meta-ticket, modified: only the 40x40 hidden weight is masked; the input and output
// layers (and biases) are meta-learned MAML-style, with IteRand as in the public code
// (paper Appendix C; reported MSE 0.596 ± 0.173)
import "lib/models.mt"

experiment sinusoid_ticket {
  seeds: [1, 2, 3]

  data {
    train: sinusoid(amplitude: [0.1, 5.0], phase: [0, 3.141592653589793], x_range: [-5, 5])
    test: sinusoid(split: "test")
  }

  task { shots: 5, queries: 5 }

  model: sine_mlp(hidden: 40)
  // torch's Linear default for what stays unmasked, as the public sinusoid code leaves it;
  // the masked hidden weight is drawn from mask.weights, as the public code re-draws it
  init {
    "layer1.**", "head.**", "**.bias": torch_default
  }

  params {
    "layer2.weight": masked  // the 40x40 hidden weight
    "**": meta  // input and output layers and every bias: MAML-style
  }

  mask {
    weights: kaiming_normal  // the public code's init_mode for masked weights (and IteRand's re-draws)
    iterand { every: 1000, prob: 1.0 }
  }

  inner { steps: 5, lr: 0.01 }

  outer { optimizer: adamw(lr: 0.001), iterations: 30000, meta_batch: 4 }

  eval { every: 1000, valid_tasks: 200, test_tasks: 1000 }
}
