import "../../../specs/omniglot_mlp_ticket.mt"

sweep widths over omniglot_mlp_ticket {
  model.widht: [1, 2]
  seeds: [1, 2]
}
// expect: 4:3: `mlp` has no parameter `widht`
