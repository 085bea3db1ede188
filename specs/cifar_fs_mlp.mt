// CIFAR-FS, 5-way 5-shot, 5-layer MLP 1024-512-256-128 on 32x32 images (paper Table 1),
// with cross-domain meta-tests. Hyperparameters from the public Meta-ticket configs.
import "lib/models.mt"

experiment cifar_fs_mlp_maml {
  seeds: [1, 2, 3]

  data {
    root: env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train: cifar_fs(split: "train", size: 32)
    valid: cifar_fs(split: "val", size: 32)
    test: [cifar_fs(split: "test", size: 32), vgg_flower(split: "test", size: 32), aircraft(split: "test", size: 32)]
  }

  task { ways: 5, shots: 5 }

  model: mlp(hidden: [1024, 512, 256, 128], classes: task.ways)

  params { "**": meta }

  inner { steps: 1, lr: 0.5 }

  outer { optimizer: adamw(lr: 0.001), iterations: 30000, meta_batch: 4 }

  eval { every: 1000, valid_tasks: 200, test_tasks: 1000 }
}

// ANIL: the body never moves in the inner loop.
experiment cifar_fs_mlp_anil extends cifar_fs_mlp_maml {
  inner { lr: 0, lr["head.**"]: 0.5 }
}

// BOIL: the head never moves in the inner loop.
experiment cifar_fs_mlp_boil extends cifar_fs_mlp_maml {
  inner { lr["head.**"]: 0 }
}

experiment cifar_fs_mlp_ticket extends cifar_fs_mlp_maml {
  params: { "**.weight": masked, "head.**": fixed, "**.bias": fixed, "**.bn.**": fixed }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 100) }
}

experiment cifar_fs_mlp_ticket_boil extends cifar_fs_mlp_ticket {
  inner { lr["head.**"]: 0 }
}
