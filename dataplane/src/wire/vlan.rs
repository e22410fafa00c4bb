//! vlan header view.
