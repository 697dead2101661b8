//! HTTP: the accept loop and connection limits ([`server`]), which host a
//! request is for ([`host`]), where it goes ([`router`]), CORS ([`cors`])
//! and the response shapes handlers share ([`response`]).

pub mod cors;
pub mod host;
pub mod response;
pub mod router;
pub mod server;
