//! The inference API on `/v1`, compatible with OpenAI's and Mistral's: the error shapes and
//! stream framing both SDKs parse, and (in the server) authentication, limits, routing across
//! replicas and token metering. The built-in worker uses the same framing, so a client sees one
//! wire format whether it talks to the gateway or to an engine.

pub mod body;
pub mod error;
pub mod limits;
pub mod metering;
pub mod mistral;
pub mod month;
pub mod prefix;
mod relay;
pub mod sse;

pub use body::OpenAiJson;
pub use error::OpenAiError;
pub mod proxy;
pub mod routing;

pub use limits::{Limits, SpentThisMonth};
pub use metering::{Meter, TokenUsage};
pub use month::Month;
pub use proxy::{Authenticator, Caller, Gateway};
pub use routing::{HealthCheck, Routes, Scope};
