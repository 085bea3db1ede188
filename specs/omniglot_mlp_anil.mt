// ANIL: MAML whose body never moves in the inner loop; only the head adapts
import "lib/models.mt"

experiment omniglot_mlp_anil {
  seeds: [1, 2, 3]

  data {
    root: env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train: omniglot(split: "train", size: 28, rotations: [0, 90, 180, 270])
    valid: omniglot(split: "val")
    test: omniglot(split: "test")
  }

  task { ways: 5, shots: 5 }  // queries per class default to shots: the paper's protocol

  model: mlp(hidden: [256, 128, 64, 64], width: 1, classes: task.ways)

  params { "**": meta }  // every initial value is meta-learned

  inner { steps: 1, test_steps: 3, lr: 0, lr["head.**"]: 0.4 }

  outer { optimizer: adamw(lr: 0.001), iterations: 30000, meta_batch: 4 }

  eval { every: 1000, valid_tasks: 100, test_tasks: 1000 }
}
