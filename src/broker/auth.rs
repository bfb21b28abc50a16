//! placeholder
pub struct TokenService;
