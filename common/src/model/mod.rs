//! The attention agent (Mott et al. 2019) in tch. See SPEC section 3.
