//! V-trace (Espeholt et al. 2018). See SPEC section 4.
