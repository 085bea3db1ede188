// Constant-initialised weights (paper section 4.1.2): every masked weight, the head's
// included, is gain / sqrt(fan_in), so only the mask can make the network expressive.
import "omniglot_mlp_ticket.mt"

experiment omniglot_mlp_ticket_constant extends omniglot_mlp_ticket {
  model.width: 4

  params: { "**.weight": masked, "**.bias": fixed, "**.bn.**": fixed }  // the head is masked too

  mask { weights: constant }

  inner { steps: 3, test_steps: 3 }

  outer { optimizer: adamw(lr: 0.1), schedule: none, iterations: 60000, meta_batch: 32 }
}

// The baseline: a random 50% mask on the same constant weights, never meta-trained.
experiment omniglot_mlp_random_mask extends omniglot_mlp_ticket_constant {
  mask { threshold: fixed_at_init(sparsity: 0.5) }
  outer { iterations: 0 }
}
