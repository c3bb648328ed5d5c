//! The ops staff's terminal console for a benchfleet control plane (ratatui).
//!
//! The shape follows the Elm architecture: an [`app::App`] state with a `Mode`, one
//! [`event::Event`] type fed by terminal input, a tick and the API [`feed`], a side-effect-free
//! `App::update`, and [`view`] widgets that draw the state. The API client lives in [`api`].

pub mod access;
pub mod api;
pub mod app;
pub mod console;
pub mod event;
pub mod feed;
pub mod settings;
pub mod terminal;
pub mod view;

#[cfg(test)]
mod testing;

pub use app::App;
pub use console::run;
pub use settings::{Args, Settings};
