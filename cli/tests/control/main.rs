//! control placeholder
