import "../../../specs/lib/models.mt"
// expect: 1:1: `tests/specs/bad/import_only.mt` defines no experiment, sweep or model
