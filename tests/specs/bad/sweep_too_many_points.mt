import "../../../specs/lib/models.mt"

experiment broken {
  data {
    root  = env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train = omniglot(split: "train")
    test  = omniglot(split: "test")
  }
  task { ways: 5, shots: 1, queries: 5 }
  model = mlp(hidden: [64, 64], classes: task.ways)
  params {
    "**.weight": masked
    "head.**", "**.bias", "**.bn.**": fixed
  }
  inner { steps: 1, lr: 0.4 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), iterations: 100 }
}

sweep many over broken {
  model.width: [1, 2, 3, 4, 5, 6, 7, 8]
  task.shots: [1, 2, 3, 4, 5, 6, 7, 8]
  seeds: [1, 2, 3, 4, 5]
}
// expect: 19:7: sweep `many` has 320 points; a sweep has at most 256
