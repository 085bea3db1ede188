import "../../../specs/lib/models.mt"

experiment broken {
  data {
    root  = env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train = omniglot(split: "train")
    test  = omniglot(split: "test")
  }
  task { ways: 5, shots: 1, queries: 5 }
  data.train.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x: 1
  model = mlp(hidden: [64, 64], classes: task.ways)
  params {
    "**.weight": masked
    "head.**", "**.bias", "**.bn.**": fixed
  }
  inner { steps: 1, lr: 0.4 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), iterations: 100 }
}
// expect: 10:3: nested more than 160 levels deep
