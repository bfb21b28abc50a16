//! placeholder
pub struct ChatServer<P>(std::marker::PhantomData<P>);
impl<P: 'static + Unpin> actix::Actor for ChatServer<P> {
    type Context = actix::Context<Self>;
}
