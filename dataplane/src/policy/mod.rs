//! Rule model, validation, compiler -> immutable `CompiledPolicy`; LPM and SNI matchers.

pub mod lpm;
