//! A nullable float parameter that PostgreSQL takes through sqlx's `Any` driver. Only sqlx
//! here: the tests include this file as it is.

use sqlx::Any;

/// An `Option<f64>` to bind. sqlx 0.8.6's `Any` driver sends a NULL `f64` to PostgreSQL typed
/// `real` (its two NULL float kinds are swapped: sqlx issue #4284), and a statement
/// PostgreSQL prepared with that NULL then refuses the next value on the same connection
/// ("incorrect binary data format in bind parameter"). This sends NULL as `double precision`,
/// like a value. `tests/tests/store.rs`, which takes this file as it is, binds both through one
/// connection and checks that a plain `Option<f64>` still fails there: the day sqlx is fixed,
/// that test says this can go.
#[derive(Debug, Clone, Copy)]
pub struct NullableF64(pub Option<f64>);

impl sqlx::Type<Any> for NullableF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Any> for NullableF64 {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as sqlx::Encode<'q, Any>>::encode_by_ref(&v, buf),
            // A NULL `f32` is what 0.8.6 sends as a NULL `double precision` (see above).
            None => <Option<f32> as sqlx::Encode<'q, Any>>::encode_by_ref(&None, buf),
        }
    }
}
