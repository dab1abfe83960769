//! Reading typed fields out of a JSON object (or query parameters) with errors that name the field.

use serde_json::{Map, Value};

use super::error::DomainError;

/// A field that may be absent, explicitly null, or set (PATCH semantics).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    /// The new value, if the request changes it: `Some(None)` clears it.
    pub fn change(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Set(v) => Some(Some(v)),
        }
    }

    /// The value when set, `None` when absent or null.
    pub fn value(self) -> Option<T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }

    /// True unless the field was absent.
    pub fn is_present(&self) -> bool {
        !matches!(self, Patch::Absent)
    }
}

/// The fields of one request object. Every field read is marked; `finish` refuses the rest.
pub struct Fields {
    map: Map<String, Value>,
    /// Query parameters carry every value as a string: accept "12" for 12 and "true" for true.
    lenient: bool,
}

impl Fields {
    /// Fields of a JSON body, which must be an object.
    pub fn from_json(value: Value) -> Result<Self, DomainError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                lenient: false,
            }),
            _ => Err(DomainError::invalid("body", "must be a JSON object")),
        }
    }

    /// Fields given as query parameters (string values).
    pub fn from_query(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let map = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Fields { map, lenient: true }
    }

    /// Removes `name` if present, for fields a caller handles by hand.
    pub fn take_raw(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// Refuses any field nobody read.
    pub fn finish(self) -> Result<(), DomainError> {
        match self.map.keys().next() {
            Some(k) => Err(DomainError::invalid(
                k.clone(),
                "unknown or read-only field",
            )),
            None => Ok(()),
        }
    }

    fn take(&mut self, name: &str) -> Patch<Value> {
        match self.map.remove(name) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(v) => Patch::Set(v),
        }
    }

    /// A string field.
    pub fn string(&mut self, name: &str) -> Result<Patch<String>, DomainError> {
        match self.take(name) {
            Patch::Set(Value::String(s)) => Ok(Patch::Set(s)),
            Patch::Set(_) => Err(DomainError::invalid(name, "must be a string")),
            Patch::Null => Ok(Patch::Null),
            Patch::Absent => Ok(Patch::Absent),
        }
    }

    /// An integer field within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Result<Patch<i64>, DomainError> {
        let bad = || DomainError::invalid(name, format!("must be an integer from {min} to {max}"));
        let v = match self.take(name) {
            Patch::Set(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
            Patch::Set(Value::String(s)) if self.lenient => {
                if s.is_empty() {
                    return Ok(Patch::Null);
                }
                s.parse::<i64>().map_err(|_| bad())?
            }
            Patch::Set(Value::String(s)) => s.parse::<i64>().map_err(|_| bad())?,
            Patch::Set(_) => return Err(bad()),
            Patch::Null => return Ok(Patch::Null),
            Patch::Absent => return Ok(Patch::Absent),
        };
        if v < min || v > max {
            return Err(bad());
        }
        Ok(Patch::Set(v))
    }

    /// A number field (JSON number, or a decimal string).
    pub fn number(&mut self, name: &str) -> Result<Patch<f64>, DomainError> {
        let bad = || DomainError::invalid(name, "must be a number");
        let v = match self.take(name) {
            Patch::Set(Value::Number(n)) => n.as_f64().ok_or_else(bad)?,
            Patch::Set(Value::String(s)) if self.lenient && s.is_empty() => return Ok(Patch::Null),
            Patch::Set(Value::String(s)) => s.parse::<f64>().map_err(|_| bad())?,
            Patch::Set(_) => return Err(bad()),
            Patch::Null => return Ok(Patch::Null),
            Patch::Absent => return Ok(Patch::Absent),
        };
        Ok(Patch::Set(v))
    }

    /// A boolean field.
    pub fn bool(&mut self, name: &str) -> Result<Patch<bool>, DomainError> {
        match self.take(name) {
            Patch::Set(Value::Bool(b)) => Ok(Patch::Set(b)),
            Patch::Set(Value::String(s)) if self.lenient => match s.as_str() {
                "true" | "1" => Ok(Patch::Set(true)),
                "false" | "0" => Ok(Patch::Set(false)),
                _ => Err(DomainError::invalid(name, "must be true or false")),
            },
            Patch::Set(_) => Err(DomainError::invalid(name, "must be true or false")),
            Patch::Null => Ok(Patch::Null),
            Patch::Absent => Ok(Patch::Absent),
        }
    }

    /// A list of strings (a JSON array, or a comma-separated query value).
    pub fn string_list(&mut self, name: &str) -> Result<Patch<Vec<String>>, DomainError> {
        let bad = || DomainError::invalid(name, "must be a list of strings");
        match self.take(name) {
            Patch::Set(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Patch::Set),
            Patch::Set(Value::String(s)) if self.lenient => Ok(Patch::Set(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            )),
            Patch::Set(_) => Err(bad()),
            Patch::Null => Ok(Patch::Null),
            Patch::Absent => Ok(Patch::Absent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field_on_wrong_type() {
        let mut f = Fields::from_json(json!({"quota_bytes": "x"})).expect("object");
        let err = f.int("quota_bytes", 0, 10).expect_err("wrong type");
        assert!(matches!(err, DomainError::InvalidInput { field, .. } if field == "quota_bytes"));
    }

    #[test]
    fn refuses_unknown_fields() {
        let mut f = Fields::from_json(json!({"name": "a", "bogus": 1})).expect("object");
        assert_eq!(f.string("name").expect("string"), Patch::Set("a".into()));
        let err = f.finish().expect_err("unknown");
        assert!(matches!(err, DomainError::InvalidInput { field, .. } if field == "bogus"));
    }

    #[test]
    fn query_values_are_coerced() {
        let mut f = Fields::from_query([
            ("n".to_string(), "12".to_string()),
            ("b".to_string(), "true".to_string()),
        ]);
        assert_eq!(f.int("n", 0, 100).expect("int"), Patch::Set(12));
        assert_eq!(f.bool("b").expect("bool"), Patch::Set(true));
        assert!(Fields::from_query([("n".into(), "1e9".into())])
            .int("n", 0, 9)
            .is_err());
    }

    #[test]
    fn huge_numbers_are_refused_not_wrapped() {
        let mut f = Fields::from_json(json!({"n": 1e300})).expect("object");
        assert!(f.int("n", 0, i64::MAX).is_err());
        let mut f = Fields::from_json(json!({"n": 18446744073709551615u64})).expect("object");
        assert!(f.int("n", 0, i64::MAX).is_err());
    }
}
