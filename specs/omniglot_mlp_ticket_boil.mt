// Meta-ticket + BOIL: masks meta-learned, the head frozen in the inner loop
import "lib/models.mt"

experiment omniglot_mlp_ticket_boil {
  seeds: [1, 2, 3]

  data {
    root: env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train: omniglot(split: "train", size: 28, rotations: [0, 90, 180, 270])
    valid: omniglot(split: "val")
    test: omniglot(split: "test")
  }

  task { ways: 5, shots: 5 }  // queries per class default to shots: the paper's protocol

  model: mlp(hidden: [256, 128, 64, 64], width: 1, classes: task.ways)

  params {
    "**.weight": masked  // fixed random weights x meta-learned mask
    "head.**", "**.bias", "**.bn.**": fixed  // never pruned, never meta-learned; adapted inside
  }

  mask {
    weights: kaiming_normal
    scores: kaiming_uniform
    threshold: fixed_at_init(sparsity: 0.0)  // starts dense
  }

  inner { steps: 1, test_steps: 3, lr: 0.4, lr["head.**"]: 0 }

  outer {
    optimizer: sgd(lr: 10, momentum: 0.9)
    schedule: cosine(warmup: 1000)
    iterations: 30000
    meta_batch: 4
  }

  eval { every: 1000, valid_tasks: 100, test_tasks: 1000 }
}
