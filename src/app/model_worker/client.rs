//! The page's side: starts the worker, sends it requests, pairs replies with them and hands
//! everything else (step reports, a worker that died) to one listener.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use crate::model::BackendChoice;
use crate::worker::protocol::{Envelope, Reply, Request};

use super::{bytes_of, post};

#[wasm_bindgen]
extern "C" {
    /// The address of wasm-bindgen's glue module, which the worker imports too (Trunk gives it
    /// a hashed name that only the glue itself knows).
    #[wasm_bindgen(thread_local_v2, js_namespace = ["import", "meta"], js_name = url)]
    static GLUE_URL: String;
}

/// The worker's loader, copied beside `index.html` by Trunk.
const LOADER: &str = "worker.js";

/// What the worker says that no request is waiting for.
pub enum WorkerEvent {
    /// A reply to a request that was sent with [`ModelWorker::send`] (a run's steps and its end).
    Message(Envelope<Reply>),
    /// The worker died (out of memory, a panic); a new one has been started in its place.
    Died(String),
}

/// A listener for replies nobody awaits.
type Listener = Rc<dyn Fn(&WorkerEvent)>;
/// A JavaScript event handler kept alive in Rust.
type Handler = Closure<dyn FnMut(JsValue)>;

thread_local! {
    /// The one worker a page starts.
    static PAGE_WORKER: RefCell<Option<ModelWorker>> = const { RefCell::new(None) };
}

/// A handle on the model worker; clones share it.
#[derive(Clone)]
pub struct ModelWorker(Rc<Inner>);

struct Inner {
    /// The `Worker` object.
    worker: RefCell<JsValue>,
    /// The backend the worker is asked to start.
    choice: BackendChoice,
    next_id: Cell<u32>,
    /// The worker's wasm has said hello; until then requests wait in `queue`.
    ready: Cell<bool>,
    /// The worker's device has started (it sent [`Reply::Started`]).
    started: Cell<bool>,
    queue: RefCell<Vec<Envelope<Request>>>,
    /// The `resolve` and `reject` of each request awaited with [`ModelWorker::ask`].
    pending: RefCell<HashMap<u32, (Function, Function)>>,
    /// The explorer's [`Request::Open`], sent again to every new worker.
    model: RefCell<Option<Request>>,
    listeners: RefCell<Vec<Listener>>,
    /// The worker's `onmessage` and `onerror`, kept alive with it.
    handlers: RefCell<Vec<Handler>>,
}

impl ModelWorker {
    /// Starts the worker and asks it for a device for `choice`.
    pub fn spawn(choice: BackendChoice) -> Result<Self, String> {
        let this = Self(Rc::new(Inner {
            worker: RefCell::new(JsValue::UNDEFINED),
            choice,
            next_id: Cell::new(1),
            ready: Cell::new(false),
            started: Cell::new(false),
            queue: RefCell::new(Vec::new()),
            pending: RefCell::new(HashMap::new()),
            model: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            handlers: RefCell::new(Vec::new()),
        }));
        this.launch()?;
        PAGE_WORKER.with_borrow_mut(|page| *page = Some(this.clone()));
        Ok(this)
    }

    /// The page's worker, once [`Self::spawn`] started it.
    pub fn page() -> Option<Self> {
        PAGE_WORKER.with_borrow(Clone::clone)
    }

    /// Whether the worker's device has started, so that what it is sent runs at once.
    pub fn is_started(&self) -> bool {
        self.0.started.get()
    }

    /// Adds a listener for what the worker says that no request awaits: every listener hears
    /// every event.
    pub fn listen(&self, listener: impl Fn(&WorkerEvent) + 'static) {
        self.0.listeners.borrow_mut().push(Rc::new(listener));
    }

    /// Sends the explorer's [`Request::Open`], and again to every worker started after a death.
    pub fn open_model(&self, open: Request) {
        *self.0.model.borrow_mut() = Some(open.clone());
        self.send(open);
    }

    /// Sends `body` without waiting; what comes back goes to the listener, with the returned id.
    pub fn send(&self, body: Request) -> u32 {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        let message = Envelope { id, body };
        if self.0.ready.get() {
            self.post_now(&message);
        } else {
            self.0.queue.borrow_mut().push(message);
        }
        id
    }

    /// Sends `body` and waits for its reply.
    pub async fn ask(&self, body: Request) -> Result<Reply, String> {
        let id = self.0.next_id.get();
        let inner = Rc::clone(&self.0);
        let answer = Promise::new(&mut |resolve, reject| {
            inner.pending.borrow_mut().insert(id, (resolve, reject));
        });
        self.send(body);
        let bytes = wasm_bindgen_futures::JsFuture::from(answer)
            .await
            .map_err(|reason| reason.as_string().unwrap_or_else(|| format!("{reason:?}")))?;
        let bytes = bytes
            .dyn_into::<js_sys::Uint8Array>()
            .map_err(|_| "the worker answered without bytes".to_string())?;
        Envelope::<Reply>::decode(&bytes.to_vec()).map(|envelope| envelope.body)
    }

    /// Creates the `Worker`, hands it this module and asks for a device.
    fn launch(&self) -> Result<(), String> {
        let constructor: Function = Reflect::get(&js_sys::global(), &"Worker".into())
            .ok()
            .and_then(|value| value.dyn_into().ok())
            .ok_or("this browser has no Web Workers")?;
        let options = Object::new();
        let _ = Reflect::set(&options, &"type".into(), &"module".into());
        let worker = Reflect::construct(&constructor, &Array::of2(&LOADER.into(), &options))
            .map_err(|error| format!("the model worker could not start: {error:?}"))?;
        let weak = Rc::downgrade(&self.0);
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            if let Some(inner) = weak.upgrade() {
                ModelWorker(inner).receive(event.unchecked_into());
            }
        });
        let weak = Rc::downgrade(&self.0);
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            // An uncaught error in a worker is fatal to what it held; stop it from also
            // reaching the page's console as an unhandled error.
            if let Some(event) = event.dyn_ref::<web_sys::ErrorEvent>() {
                event.prevent_default();
            }
            let detail = event
                .dyn_ref::<web_sys::ErrorEvent>()
                .map(|error| error.message())
                .unwrap_or_default();
            if let Some(inner) = weak.upgrade() {
                ModelWorker(inner).died(&detail);
            }
        });
        let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
        let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());
        let start = Object::new();
        let _ = Reflect::set(&start, &"glue".into(), &GLUE_URL.with(|url| url.into()));
        let _ = Reflect::set(&start, &"module".into(), &wasm_bindgen::module());
        if let Ok(post) = Reflect::get(&worker, &"postMessage".into())
            && let Ok(post) = post.dyn_into::<Function>()
        {
            post.call1(&worker, &start)
                .map_err(|error| format!("the model worker could not start: {error:?}"))?;
        }
        *self.0.worker.borrow_mut() = worker;
        *self.0.handlers.borrow_mut() = vec![on_message, on_error];
        self.0.ready.set(false);
        self.0.started.set(false);
        self.send(Request::Start {
            choice: self.0.choice,
        });
        let open = self.0.model.borrow().clone();
        if let Some(open) = open {
            self.send(open);
        }
        Ok(())
    }

    fn post_now(&self, message: &Envelope<Request>) {
        let worker = self.0.worker.borrow().clone();
        if let Err(failure) = post(&worker, message)
            && let Some((_, reject)) = self.0.pending.borrow_mut().remove(&message.id)
        {
            let _ = reject.call1(&JsValue::NULL, &failure.into());
        }
    }

    fn receive(&self, event: web_sys::MessageEvent) {
        let Some(bytes) = bytes_of(&event) else {
            // `web/worker.js` reports a trap in the wasm as `{ died: "…" }`.
            let died = Reflect::get(&event.data(), &"died".into())
                .ok()
                .and_then(|detail| detail.as_string());
            if let Some(detail) = died {
                self.died(&detail);
            }
            return;
        };
        let message = match Envelope::<Reply>::decode(&bytes) {
            Ok(message) => message,
            // What was pending can never be answered: the worker is started again.
            Err(failure) => return self.died(&failure),
        };
        if matches!(message.body, Reply::Started { .. }) {
            self.0.started.set(true);
        }
        if message.body == Reply::Hello {
            self.0.ready.set(true);
            let waiting: Vec<_> = self.0.queue.borrow_mut().drain(..).collect();
            for message in &waiting {
                self.post_now(message);
            }
            return;
        }
        let pending = self.0.pending.borrow_mut().remove(&message.id);
        match pending {
            Some((resolve, _)) => {
                let _ = resolve.call1(&JsValue::NULL, &js_sys::Uint8Array::from(&bytes[..]));
            }
            None => self.tell(WorkerEvent::Message(message)),
        }
    }

    /// Reports the death in words, fails every request in flight and starts a new worker.
    fn died(&self, detail: &str) {
        let detail = if detail.is_empty() {
            "it stopped without saying why"
        } else {
            detail
        };
        let reason = format!("The model worker died ({detail})");
        if let Ok(terminate) = Reflect::get(&self.0.worker.borrow(), &"terminate".into())
            && let Ok(terminate) = terminate.dyn_into::<Function>()
        {
            let _ = terminate.call0(&self.0.worker.borrow());
        }
        let pending: Vec<_> = self.0.pending.borrow_mut().drain().collect();
        for (_, (_, reject)) in pending {
            let _ = reject.call1(&JsValue::NULL, &reason.clone().into());
        }
        self.0.queue.borrow_mut().clear();
        let reason = match self.launch() {
            Ok(()) => format!("{reason}; a new one has started."),
            Err(failure) => format!("{reason}, and a new one could not start: {failure}"),
        };
        self.tell(WorkerEvent::Died(reason));
    }

    fn tell(&self, event: WorkerEvent) {
        let listeners = self.0.listeners.borrow().clone();
        for listener in listeners {
            listener(&event);
        }
    }
}
