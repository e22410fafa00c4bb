//! tcp header view.
