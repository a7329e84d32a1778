import './base.css';
import './workspacepage.css';
